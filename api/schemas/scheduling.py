"""Scheduling: a mentor's availability rules, free slots, booking a slot, the calendar feed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import QueryModel, Strict

HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
IsoDate = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
# Checked against RFC 3339 in the service (a date alone, or a bare number, is refused there).
IsoDateTime = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"format": "date-time"})]


class WeeklyRange(Strict):
    weekday: Annotated[int, Field(ge=0, le=6, strict=True)]  # 0 = Monday
    start: HHMM
    end: HHMM


class AvailabilityIn(Strict):
    """``PUT /api/mentors/me/availability``: the whole rule set (replaces the stored one)."""

    time_zone: Annotated[str, Field(min_length=1, max_length=64)]
    weekly: Annotated[list[WeeklyRange], Field(max_length=70)]
    slot_minutes: Literal[30, 45, 60, 90]
    price_cents: Annotated[int, Field(ge=0, le=10_000_000, strict=True)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    buffer_minutes: Annotated[int, Field(ge=0, le=240, strict=True)] = 0
    min_notice_hours: Annotated[int, Field(ge=0, le=24 * 30, strict=True)] = 12
    max_days_ahead: Annotated[int, Field(ge=1, le=365, strict=True)] = 60
    days_off: Annotated[list[IsoDate], Field(max_length=366)] = []


class AvailabilityOut(BaseModel):
    mentor_id: int
    configured: bool  # False: the mentor never set rules (these are the defaults, no slots)
    time_zone: str
    weekly: list[WeeklyRange]
    slot_minutes: int
    price_cents: int
    currency: str
    buffer_minutes: int
    min_notice_hours: int
    max_days_ahead: int
    days_off: list[str]


class SlotQuery(QueryModel):
    from_: Annotated[IsoDateTime, Field(alias="from")]
    to: IsoDateTime


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    price_cents: int
    currency: str


class SlotPage(BaseModel):
    items: list[SlotOut]
    time_zone: str  # the mentor's, so pages can show it beside the viewer's


class SlotBookingIn(Strict):
    mentor_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    starts_at: IsoDateTime


class CalendarFeedOut(BaseModel):
    url: str
    created_at: datetime


class RescheduleIn(Strict):
    starts_at: IsoDateTime


class RescheduleOut(BaseModel):
    id: int
    session_id: int
    proposed_by_id: int
    proposed_by_name: str
    starts_at: datetime
    previous_starts_at: datetime
    status: str
    created_at: datetime
    decided_at: datetime | None = None


class RescheduleState(BaseModel):
    """A 1:1's moving state as one of its two people sees it."""

    pending: RescheduleOut | None
    can_propose: bool  # a booked 1:1, scheduled, not started, nothing pending
    mentor_id: int
