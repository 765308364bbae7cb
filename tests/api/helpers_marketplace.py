"""Direct database helpers for tests of scheduled sessions and bookings (times the API refuses)."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.keys import DB
from api.models import Booking, BookingStatus, Session, SessionStatus, utcnow


async def make_session(
    client,
    mentor_id: int,
    *,
    starts_in: timedelta = timedelta(days=1),
    status: SessionStatus = SessionStatus.scheduled,
    duration_min: int = 60,
    capacity: int = 5,
    price_cents: int = 0,
    title: str = "Live class",
    starts_at: datetime | None = None,
) -> int:
    async with client.app[DB].write() as s:
        row = Session(
            mentor_id=mentor_id,
            title=title,
            domain="Programming",
            capacity=capacity,
            starts_at=starts_at or utcnow() + starts_in,
            duration_min=duration_min,
            status=status,
            price_cents=price_cents,
            talk_time={},
        )
        s.add(row)
        await s.flush()
        return row.id


async def book(client, session_id: int, learner_id: int, status: BookingStatus = BookingStatus.confirmed) -> int:
    async with client.app[DB].write() as s:
        b = Booking(session_id=session_id, learner_id=learner_id, status=status)
        s.add(b)
        sess = await s.get(Session, session_id)
        if status != BookingStatus.cancelled:
            sess.seats_taken += 1
        await s.flush()
        return b.id
