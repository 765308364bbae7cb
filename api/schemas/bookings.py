"""Bookings: booking a seat, cancelling it, a learner's bookings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas.common import QueryModel, Strict


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
    # Attendees may replay its recording (GET /api/sessions/{id}/recordings).
    attendee_replay: bool = False


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
    # The terms sold (docs/money.md): when the session no longer starts at ``booked_starts_at``
    # or lasts ``booked_duration_min``, ``terms_changed`` is true: the learner may accept the
    # new time or cancel for a full refund whatever the refund window.
    booked_starts_at: datetime | None = None
    booked_duration_min: int | None = None
    terms_changed: bool = False
    # the learner's own rating of the class (1-5), once given: the page shows it instead of a form
    my_rating: int | None = None
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
