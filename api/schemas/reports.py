"""Schemas of learners' problem reports on past classes (``api.services.reports``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import QueryModel, Strict

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=2000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class ReportCreate(Strict):
    """What went wrong (the admin reads it)."""

    reason: Reason


class ReportResolve(Strict):
    """``refund``: the learner gets the booking's price back; ``release``: the mentor is paid now."""

    action: Literal["refund", "release"]
    note: Note = ""


class ReportsQuery(QueryModel):
    status: Literal["open", "refunded", "released"] | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=200)] = 50


class ReportOut(BaseModel):
    id: int
    booking_id: int
    session_id: int
    session_title: str
    learner_id: int
    learner_name: str
    mentor_id: int
    mentor_name: str
    booking_status: str
    amount_cents: int
    currency: str
    reason: str
    status: str
    resolution_note: str
    created_at: datetime
    resolved_at: datetime | None


class ReportPage(BaseModel):
    items: list[ReportOut]
    total: int
    page: int
    page_size: int


class Reportable(BaseModel):
    """A past booking its learner may still report, and until when."""

    booking_id: int
    session_id: int
    until: datetime


class LearnerReports(BaseModel):
    items: list[ReportOut]
    reportable: list[Reportable]
