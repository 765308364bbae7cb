"""Booking, earnings and payout request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict
from api.schemas.sessions import QueryModel


class BookingCreate(Strict):
    session_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]


class BookingSession(BaseModel):
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    duration_min: int
    status: str
    mentor_id: int
    mentor_name: str


class BookingOut(BaseModel):
    id: int
    session_id: int
    learner_id: int
    status: str
    price_cents: int
    currency: str
    payment_ref: str | None = None
    payment_provider: str = "sandbox"
    test_mode: bool = True
    refunded: bool = False
    created_at: datetime
    cancelled_at: datetime | None = None
    session: BookingSession


class BookingCancelOut(BaseModel):
    booking: BookingOut
    refund_cents: int
    seats_left: int


class BookingQuery(QueryModel):
    when: Literal["upcoming", "past", "all"] = "all"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 20


class BookingPage(BaseModel):
    items: list[BookingOut]
    total: int
    page: int
    page_size: int


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


class JournalEntryOut(BaseModel):
    account: str
    amount_cents: int
    currency: str


class JournalOut(BaseModel):
    id: int
    kind: str
    reference: str
    session_id: int | None = None
    booking_id: int | None = None
    created_at: datetime
    entries: list[JournalEntryOut]


class JournalPage(BaseModel):
    items: list[JournalOut]
    total: int
    page: int
    page_size: int


def journal_page(data: dict[str, Any]) -> JournalPage:
    return JournalPage.model_validate(data)
