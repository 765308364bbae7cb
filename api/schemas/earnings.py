"""A mentor's earnings (from the ledger) and payouts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import QueryModel, Strict


class PayoutCreate(Strict):
    amount_cents: Annotated[int, Field(ge=1, le=10**10, strict=True)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"


class PayoutOut(BaseModel):
    id: int
    amount_cents: int
    currency: str
    status: str
    reference: str = ""
    test_mode: bool = True
    created_at: datetime


class EntryOut(BaseModel):
    journal_id: int
    kind: str
    account: str
    amount_cents: int
    currency: str
    session_id: int | None = None
    booking_id: int | None = None
    created_at: datetime


class EarningsQuery(QueryModel):
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"


class EarningsOut(BaseModel):
    currency: str
    currencies: list[str]
    total_earned_cents: int
    pending_cents: int
    available_cents: int
    paid_out_cents: int
    min_payout_cents: int
    test_mode: bool = True
    payouts: list[PayoutOut]
    recent_entries: list[EntryOut]
