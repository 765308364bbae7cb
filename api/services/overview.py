"""Read-only figures pages show at a glance: the dashboards' counts and next sessions, and the
featured mentors of the landing page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from api.db import Database
from api.models import Booking, BookingStatus, Feedback, Role, Session, SessionStatus, User, utcnow
from api.services.accounts import avatar_url

FEATURED_LIMIT = 10


async def mentor_overview(db: Database, mentor_id: int) -> dict[str, Any]:
    """The mentor's session counts by status and their next scheduled sessions."""
    async with db.read() as s:
        counts = dict(
            (
                await s.execute(
                    select(Session.status, func.count()).where(Session.mentor_id == mentor_id).group_by(Session.status)
                )
            ).all()
        )
        upcoming = (
            await s.scalars(
                select(Session)
                .where(
                    Session.mentor_id == mentor_id,
                    Session.status.in_([SessionStatus.scheduled, SessionStatus.live]),
                    Session.starts_at >= utcnow() - timedelta(hours=2),
                )
                .order_by(Session.starts_at)
                .limit(5)
            )
        ).all()
        learners = (
            await s.scalar(
                select(func.count(func.distinct(Booking.learner_id)))
                .join(Session, Session.id == Booking.session_id)
                .where(Session.mentor_id == mentor_id, Booking.status != BookingStatus.cancelled)
            )
            or 0
        )
    return {
        "counts": {k.value: v for k, v in counts.items()},
        "learners": learners,
        "upcoming": [
            {
                "id": x.id,
                "title": x.title,
                "starts_at": x.starts_at.isoformat(),
                "seats_taken": x.seats_taken,
                "capacity": x.capacity,
                "status": x.status.value,
            }
            for x in upcoming
        ],
    }


async def admin_overview(db: Database) -> dict[str, Any]:
    """Platform-wide counts: users by role, sessions by status, active bookings."""
    async with db.read() as s:
        users = dict((await s.execute(select(User.role, func.count()).group_by(User.role))).all())
        inactive = await s.scalar(select(func.count()).select_from(User).where(User.is_active.is_(False))) or 0
        sessions = dict((await s.execute(select(Session.status, func.count()).group_by(Session.status))).all())
        bookings = (
            await s.scalar(select(func.count()).select_from(Booking).where(Booking.status != BookingStatus.cancelled))
            or 0
        )
    return {
        "users": {r.value: users.get(r, 0) for r in Role},
        "inactive": inactive,
        "sessions": {st.value: sessions.get(st, 0) for st in SessionStatus},
        "bookings": bookings,
    }


async def featured_mentors(db: Database, limit: int = FEATURED_LIMIT) -> list[dict[str, Any]]:
    """Active mentors, best rated and busiest first, with their rating and session count."""
    rating = (
        select(
            Session.mentor_id.label("mentor_id"),
            func.avg(Feedback.rating).label("avg"),
            func.count(Feedback.id).label("reviews"),
        )
        .join(Feedback, Feedback.session_id == Session.id)
        .where(Feedback.hidden.is_(False))
        .group_by(Session.mentor_id)
        .subquery()
    )
    sessions = (
        select(Session.mentor_id.label("mentor_id"), func.count(Session.id).label("n"))
        .where(Session.status.in_([SessionStatus.scheduled, SessionStatus.live, SessionStatus.completed]))
        .group_by(Session.mentor_id)
        .subquery()
    )
    q = (
        select(User, rating.c.avg, rating.c.reviews, sessions.c.n)
        .outerjoin(rating, rating.c.mentor_id == User.id)
        .outerjoin(sessions, sessions.c.mentor_id == User.id)
        .where(User.role == Role.mentor, User.is_active.is_(True))
        .order_by(func.coalesce(rating.c.reviews, 0).desc(), func.coalesce(sessions.c.n, 0).desc(), User.id)
        .limit(limit)
    )
    async with db.read() as s:
        rows = (await s.execute(q)).all()
    return [
        {
            "id": u.id,
            "full_name": u.full_name,
            "avatar_url": avatar_url(u),
            "bio": u.bio,
            "domains": list(u.domains or []),
            "skills": list(u.skills or [])[:4],
            "rating": round(float(avg), 1) if avg is not None else None,
            "reviews": int(reviews or 0),
            "sessions": int(n or 0),
        }
        for u, avg, reviews, n in rows
    ]
