"""Readiness before a live session: "I am ready" from T–10 min until the end.

Learners' readiness is ``Booking.ready_at``; the mentor's is the latest
``room.ready`` / ``room.unready`` row of the audit log for the session (no
schema change needed). Each change is broadcast on ``session:{id}`` as
``{"type": "ready", "data": {session_id, user_id, role, ready}}``; when the
mentor becomes ready every booked learner gets ``mentor.ready`` ("Mentor is
ready", link to the room), when a learner becomes ready the mentor gets
``learner.joined``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import AuditLog, Booking, BookingStatus, Notification, Role, Session, SessionStatus, User
from api.services import notifications
from api.services.errors import Conflict, Forbidden, NotFound

OPENS_BEFORE = timedelta(minutes=10)
ACTIVE = (BookingStatus.confirmed, BookingStatus.attended)
READY, UNREADY = "room.ready", "room.unready"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def window(sess: Session, grace_minutes: int = 0) -> tuple[datetime, datetime]:
    """(opens, closes): T–10 min until the scheduled end (plus the room grace)."""
    opens = sess.starts_at - OPENS_BEFORE
    closes = sess.starts_at + timedelta(minutes=sess.duration_min + grace_minutes)
    return opens, closes


async def _participant(
    s: AsyncSession, session_id: int, user_id: int, role: str
) -> tuple[Session, str, Booking | None]:
    sess = await s.get(Session, session_id)
    if sess is None or (sess.status == SessionStatus.draft and sess.mentor_id != user_id and role != Role.admin.value):
        raise NotFound.of("session")
    if sess.mentor_id == user_id:
        return sess, "mentor", None
    booking = await s.scalar(
        select(Booking).where(
            Booking.session_id == session_id, Booking.learner_id == user_id, Booking.status.in_(ACTIVE)
        )
    )
    if booking is None:
        raise Forbidden("Only the mentor and booked learners take part in this session.")
    return sess, "learner", booking


async def _mentor_ready_at(s: AsyncSession, sess: Session) -> datetime | None:
    row = await s.scalar(
        select(AuditLog)
        .where(
            AuditLog.actor_id == sess.mentor_id,
            AuditLog.target == f"session:{sess.id}",
            AuditLog.action.in_((READY, UNREADY)),
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    return row.created_at if row is not None and row.action == READY else None


async def set_ready(
    ctx: Context, user_id: int, role: str, session_id: int, ready: bool = True, *, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        sess, part, booking = await _participant(s, session_id, user_id, role)
        if sess.status == SessionStatus.cancelled:
            raise Conflict("This session was cancelled.", code="cancelled")
        opens, closes = window(sess, ctx.settings.room_grace_minutes)
        if sess.status == SessionStatus.completed or now >= closes:
            raise Conflict("This session is over.", code="too_late")
        if now < opens:
            raise Conflict(
                "You can get ready from 10 minutes before the start.",
                code="too_early",
                fields={"opens_at": opens.isoformat()},
            )
        if part == "mentor":
            was = await _mentor_ready_at(s, sess) is not None
            if was != ready:
                s.add(
                    AuditLog(
                        actor_id=user_id, action=READY if ready else UNREADY, target=f"session:{session_id}", details={}
                    )
                )
            if ready and not was:
                learners = (
                    await s.scalars(
                        select(Booking.learner_id).where(Booking.session_id == session_id, Booking.status.in_(ACTIVE))
                    )
                ).all()
                for lid in learners:
                    notes.append(
                        notifications.add(
                            s,
                            lid,
                            "mentor.ready",
                            "Mentor is ready",
                            f"{sess.title} is about to start: join the room.",
                            f"/room/{session_id}",
                        )
                    )
        else:
            assert booking is not None
            was = booking.ready_at is not None
            booking.ready_at = now if ready else None
            if ready and not was:
                name = await s.scalar(select(User.full_name).where(User.id == user_id)) or "A learner"
                notes.append(
                    notifications.add(
                        s,
                        sess.mentor_id,
                        "learner.joined",
                        "Learner has joined",
                        f"{name} is ready for {sess.title}.",
                        f"/room/{session_id}",
                    )
                )
        changed = was != ready
    if changed:
        await ctx.broker.publish(
            notifications.session_channel(session_id),
            {"type": "ready", "data": {"session_id": session_id, "user_id": user_id, "role": part, "ready": ready}},
        )
    await notifications.push(ctx.broker, notes)
    return {"session_id": session_id, "user_id": user_id, "role": part, "ready": ready}


async def status(ctx: Context, user_id: int, role: str, session_id: int) -> dict[str, Any]:
    """Who is ready: the mentor and admins see every learner; a learner sees the mentor,
    themself and how many learners are ready."""
    async with ctx.db.read() as s:
        sess = await s.get(Session, session_id)
        if sess is None or (
            sess.status == SessionStatus.draft and sess.mentor_id != user_id and role != Role.admin.value
        ):
            raise NotFound.of("session")
        if role != Role.admin.value:
            await _participant(s, session_id, user_id, role)
        mentor_at = await _mentor_ready_at(s, sess)
        rows = (
            await s.execute(
                select(Booking.learner_id, User.full_name, Booking.ready_at)
                .join(User, User.id == Booking.learner_id)
                .where(Booking.session_id == session_id, Booking.status.in_(ACTIVE))
                .order_by(Booking.id)
            )
        ).all()
        opens, closes = window(sess, ctx.settings.room_grace_minutes)
    full = role == Role.admin.value or user_id == sess.mentor_id
    learners = [
        {"user_id": lid, "full_name": name, "ready": at is not None, "ready_at": at}
        for lid, name, at in rows
        if full or lid == user_id
    ]
    return {
        "session_id": session_id,
        "opens_at": opens,
        "closes_at": closes,
        "mentor": {"user_id": sess.mentor_id, "ready": mentor_at is not None, "ready_at": mentor_at},
        "learners": learners,
        "learners_ready": sum(1 for r in rows if r[2] is not None),
        "learners_total": len(rows),
    }
