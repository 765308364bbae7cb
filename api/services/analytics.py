"""Mentor analytics: followers, enrollments per week, sessions, ratings, revenue, talk time.

Revenue comes from the ledger (balances are sums of entries); talk time from
``Session.talk_time`` (``{user_id: seconds}``, filled by the SFU).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from api.context import Context
from api.models import Booking, BookingStatus, Feedback, Follow, Session, SessionStatus, User

# Enrollments that count (a no-show enrolled and paid: the class took place without them).
ACTIVE = (BookingStatus.confirmed, BookingStatus.attended, BookingStatus.no_show)


def week_start(dt: datetime) -> datetime:
    dt = dt.astimezone(timezone.utc)
    monday = dt - timedelta(days=dt.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


async def mentor_analytics(
    ctx: Context, mentor_id: int, *, weeks: int = 12, now: datetime | None = None
) -> dict[str, Any]:
    from api.services.money import ledger

    now = now or datetime.now(timezone.utc)
    first_week = week_start(now) - timedelta(weeks=weeks - 1)
    async with ctx.db.read() as s:
        followers = await s.scalar(select(func.count()).select_from(Follow).where(Follow.mentor_id == mentor_id)) or 0
        by_status = dict(
            (
                await s.execute(
                    select(Session.status, func.count()).where(Session.mentor_id == mentor_id).group_by(Session.status)
                )
            ).all()
        )
        bookings = (
            await s.execute(
                select(Booking.created_at, Booking.price_cents, Booking.currency)
                .join(Session, Session.id == Booking.session_id)
                .where(Session.mentor_id == mentor_id, Booking.status.in_(ACTIVE))
            )
        ).all()
        learners = (
            await s.scalar(
                select(func.count(func.distinct(Booking.learner_id)))
                .join(Session, Session.id == Booking.session_id)
                .where(Session.mentor_id == mentor_id, Booking.status.in_(ACTIVE))
            )
            or 0
        )
        rating = (
            await s.execute(
                select(func.avg(Feedback.rating), func.count(Feedback.id))
                .join(Session, Session.id == Feedback.session_id)
                .where(Session.mentor_id == mentor_id, Feedback.hidden.is_(False))
            )
        ).one()
        dist = dict(
            (
                await s.execute(
                    select(Feedback.rating, func.count())
                    .join(Session, Session.id == Feedback.session_id)
                    .where(Session.mentor_id == mentor_id, Feedback.hidden.is_(False))
                    .group_by(Feedback.rating)
                )
            ).all()
        )
        talk_rows = (
            await s.execute(
                select(Session.id, Session.title, Session.talk_time, Session.connection_quality)
                .where(Session.mentor_id == mentor_id, Session.status == SessionStatus.completed)
                .order_by(Session.starts_at.desc())
                .limit(50)
            )
        ).all()
        currency = (
            await s.scalar(
                select(Session.currency).where(Session.mentor_id == mentor_id).order_by(Session.id.desc()).limit(1)
            )
            or "USD"
        )
        balances = await ledger.mentor_balances(s, mentor_id, currency)
        names: dict[str, str] = {}
        ids = {int(k) for _, _, t, _q in talk_rows for k in (t or {}) if str(k).isdigit()}
        if ids:
            names = {
                str(i): n for i, n in (await s.execute(select(User.id, User.full_name).where(User.id.in_(ids)))).all()
            }
    weekly: dict[datetime, dict[str, int]] = defaultdict(lambda: {"enrollments": 0, "revenue_cents": 0})
    for created, price, cur in bookings:
        w = week_start(created)
        if w >= first_week:
            weekly[w]["enrollments"] += 1
            if cur == currency:
                weekly[w]["revenue_cents"] += price
    series = [
        {"week": (first_week + timedelta(weeks=i)).date().isoformat(), **weekly[first_week + timedelta(weeks=i)]}
        for i in range(weeks)
    ]
    mentor_key = str(mentor_id)
    talk_sessions = []
    mentor_talk = others_talk = 0.0
    for sid, title, talk, _quality in talk_rows:
        talk = {str(k): float(v) for k, v in (talk or {}).items()}
        if not talk:
            continue
        m = talk.get(mentor_key, 0.0)
        o = sum(v for k, v in talk.items() if k != mentor_key)
        mentor_talk += m
        others_talk += o
        talk_sessions.append(
            {
                "session_id": sid,
                "title": title,
                "mentor_seconds": round(m, 1),
                "learners_seconds": round(o, 1),
                "by_user": [
                    {"user_id": int(k), "full_name": names.get(k, ""), "seconds": v}
                    for k, v in sorted(talk.items())
                    if k.isdigit()
                ],
            }
        )
    total_talk = mentor_talk + others_talk
    connection = [
        row
        for row in (connection_summary(sid, title, quality, mentor_key) for sid, title, _talk, quality in talk_rows)
        if row is not None
    ]
    return {
        "mentor_id": mentor_id,
        "followers": int(followers),
        "learners": int(learners),
        "enrollments_total": len(bookings),
        "enrollments_weekly": series,
        "sessions": {st.value: int(by_status.get(st, 0)) for st in SessionStatus},
        "completed_sessions": int(by_status.get(SessionStatus.completed, 0)),
        "rating": {
            "average": round(float(rating[0]), 2) if rating[0] is not None else None,
            "count": int(rating[1] or 0),
            "distribution": {str(k): int(dist.get(k, 0)) for k in range(1, 6)},
        },
        "revenue": {
            "currency": currency,
            "gross_bookings_cents": sum(p for _, p, c in bookings if c == currency),
            "total_earned_cents": balances.total_earned,
            "pending_cents": balances.pending,
            "available_cents": balances.available,
            "paid_out_cents": balances.paid_out,
        },
        "talk_time": {
            "mentor_seconds": round(mentor_talk, 1),
            "learners_seconds": round(others_talk, 1),
            "mentor_share": round(mentor_talk / total_talk, 3) if total_talk else None,
            "sessions": talk_sessions,
        },
        "connection": {"poor_threshold_seconds": POOR_SECONDS, "sessions": connection},
    }


#: a learner counts as having had a poor connection after this long poor or lost
POOR_SECONDS = 60


def connection_summary(
    session_id: int, title: str, quality: dict[str, Any] | None, mentor_key: str
) -> dict[str, Any] | None:
    """One class's connections as the SFU scored them: how many learners had a poor (or
    lost) connection for at least a minute, and for how long in all."""
    learners = {k: v for k, v in (quality or {}).items() if k != mentor_key and isinstance(v, dict)}
    if not learners:
        return None
    bad = {k: float(v.get("poor", 0.0)) + float(v.get("lost", 0.0)) for k, v in learners.items()}
    poor = [k for k, secs in bad.items() if secs >= POOR_SECONDS]
    mentor = (quality or {}).get(mentor_key) or {}
    return {
        "session_id": session_id,
        "title": title,
        "learners": len(learners),
        "poor_learners": len(poor),
        "poor_seconds": round(sum(bad[k] for k in poor), 1),
        "mentor_poor_seconds": round(float(mentor.get("poor", 0.0)) + float(mentor.get("lost", 0.0)), 1),
    }
