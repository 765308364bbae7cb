"""Read-only figures the dashboard overviews show (counts and the next sessions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from api.db import Database
from api.models import Booking, BookingStatus, Role, Session, SessionStatus, User, utcnow


async def mentor_overview(db: Database, mentor_id: int) -> dict[str, Any]:
    """The mentor's session counts by status and their next scheduled sessions."""
    async with db.read() as s:
        counts = dict((await s.execute(
            select(Session.status, func.count()).where(Session.mentor_id == mentor_id).group_by(Session.status))).all())
        upcoming = (await s.scalars(
            select(Session).where(Session.mentor_id == mentor_id,
                                  Session.status.in_([SessionStatus.scheduled, SessionStatus.live]),
                                  Session.starts_at >= utcnow() - timedelta(hours=2))
            .order_by(Session.starts_at).limit(5))).all()
        learners = await s.scalar(
            select(func.count(func.distinct(Booking.learner_id))).join(Session, Session.id == Booking.session_id)
            .where(Session.mentor_id == mentor_id, Booking.status != BookingStatus.cancelled)) or 0
    return {"counts": {k.value: v for k, v in counts.items()}, "learners": learners,
            "upcoming": [{"id": x.id, "title": x.title, "starts_at": x.starts_at.isoformat(),
                          "seats_taken": x.seats_taken, "capacity": x.capacity, "status": x.status.value}
                         for x in upcoming]}


async def admin_overview(db: Database) -> dict[str, Any]:
    """Platform-wide counts: users by role, sessions by status, active bookings."""
    async with db.read() as s:
        users = dict((await s.execute(select(User.role, func.count()).group_by(User.role))).all())
        inactive = await s.scalar(select(func.count()).select_from(User).where(User.is_active.is_(False))) or 0
        sessions = dict((await s.execute(select(Session.status, func.count()).group_by(Session.status))).all())
        bookings = await s.scalar(select(func.count()).select_from(Booking).where(
            Booking.status != BookingStatus.cancelled)) or 0
    return {"users": {r.value: users.get(r, 0) for r in Role}, "inactive": inactive,
            "sessions": {st.value: sessions.get(st, 0) for st in SessionStatus}, "bookings": bookings}

