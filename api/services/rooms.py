"""Live rooms, the application side: who may enter which room and when.

The SFU engine (``sfu/``) knows nothing of users or bookings; this module
decides admission (room tokens), opens the room when the mentor starts the
class, ends it, and stores what the engine reports (talk time, chat; who was
connected when goes to ``api.services.attendance``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import Booking, BookingStatus, ChatMessage, RoomToken, Session, SessionStatus, User
from api.security import TokenError, decode_scoped_token, issue_scoped_token
from api.services import session_state
from api.services.errors import Conflict, Forbidden, NotFound, Unauthenticated

ROOM_PURPOSE = "room"
# Tokens (and readiness) open this long before the start.
EARLY = timedelta(minutes=10)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RoomAdmission:
    """A verified room token: this user may be in this session's room now."""

    session_id: int
    user_id: int
    role: str  # "mentor" | "learner"
    display_name: str
    jti: str


def room_window(session: Session, grace_minutes: int) -> tuple[datetime, datetime]:
    end = session.starts_at + timedelta(minutes=session.duration_min + grace_minutes)
    return session.starts_at - EARLY, end


async def participant_role(s: AsyncSession, session: Session, user_id: int) -> str | None:
    """``"mentor"``, ``"learner"`` (a confirmed or attended booking) or None: who this user is in
    the session's room, inside the caller's transaction."""
    if session.mentor_id == user_id:
        return "mentor"
    booked = await s.scalar(
        select(Booking.id).where(
            Booking.session_id == session.id,
            Booking.learner_id == user_id,
            Booking.status.in_((BookingStatus.confirmed, BookingStatus.attended)),
        )
    )
    return "learner" if booked else None


async def issue_token(ctx: Context, session_id: int, user_id: int) -> tuple[str, RoomAdmission, datetime]:
    """A room token for one room and one user: the mentor or a learner with a confirmed
    booking, from T-10 min until the end plus the grace period."""
    t = now()
    async with ctx.db.write() as s:
        session = await s.get(Session, session_id)
        user = await s.get(User, user_id)
        if session is None or user is None:
            raise NotFound.of("session")
        role = await participant_role(s, session, user_id)
        if role is None:
            if session.status == SessionStatus.draft:
                raise NotFound.of("session")
            raise Forbidden("Only the mentor and learners with a booking may join this room.")
        if session.status in (SessionStatus.cancelled, SessionStatus.completed, SessionStatus.draft):
            raise Conflict(f"This session is {session.status.value}; its room is closed.", code="room_closed")
        opens, closes = room_window(session, ctx.settings.room_grace_minutes)
        if t < opens:
            raise Conflict("The room opens 10 minutes before the start.", code="too_early")
        if t > closes:
            raise Conflict("This session is over.", code="too_late")
        jti = uuid.uuid4().hex
        s.add(RoomToken(jti=jti, session_id=session_id, user_id=user_id, issued_at=t, expires_at=closes))
    ttl = max(60, int((closes - t).total_seconds()))
    admission = RoomAdmission(session_id, user_id, role, user.full_name, jti)
    token = issue_scoped_token(
        ctx.settings.jwt_secret,
        purpose=ROOM_PURPOSE,
        ttl_seconds=ttl,
        claims={"sid": session_id, "sub": str(user_id), "role": role, "name": user.full_name, "jti": jti},
    )
    return token, admission, closes


async def admit(ctx: Context, session_id: int, token: str) -> RoomAdmission:
    """Check a room token presented at the signaling socket (before the upgrade)."""
    try:
        claims = decode_scoped_token(ctx.settings.jwt_secret, token, purpose=ROOM_PURPOSE)
        sid, uid = int(claims["sid"]), int(claims["sub"])
    except (TokenError, KeyError, TypeError, ValueError) as exc:
        raise Unauthenticated("This room link is invalid or has expired.", code="invalid_token") from exc
    if sid != session_id:
        raise Forbidden("This token is for another room.", code="wrong_room")
    async with ctx.db.write() as s:
        row = await s.scalar(select(RoomToken).where(RoomToken.jti == claims["jti"]))
        session = await s.get(Session, session_id)
        user = await s.get(User, uid)
        if row is None or row.user_id != uid or row.session_id != sid or row.expires_at < now():
            raise Unauthenticated("This room link is invalid or has expired.", code="invalid_token")
        if user is None or not user.is_active or session is None:
            raise Unauthenticated("This room link is invalid or has expired.", code="invalid_token")
        role = await participant_role(s, session, uid)
        if role is None:
            raise Forbidden("Your booking for this session is no longer active.")
        if session.status in (SessionStatus.cancelled, SessionStatus.completed):
            raise Conflict("This session has ended.", code="room_closed")
        if session.status == SessionStatus.scheduled and role != "mentor":
            raise Conflict("Waiting for the mentor to start the class.", code="room_not_open")
        row.used_at = row.used_at or now()
    return RoomAdmission(sid, uid, role, user.full_name, str(claims["jti"]))


async def start_class(ctx: Context, session_id: int) -> bool:
    """The mentor entered: the session goes live (idempotent). True when it just opened."""
    async with ctx.db.write() as s:
        session = await s.get(Session, session_id)
        if session is None:
            raise NotFound.of("session")
        if session.status == SessionStatus.live:
            return False
        await session_state.transition(s, session_id, SessionStatus.live)
    return True


async def end_class(ctx: Context, session_id: int, actor_id: int, actor_role: str) -> Session:
    """The mentor (or an admin) ends the live class; its bookings settle from what the
    SFU saw (``api.services.money.settlement``). 409 ``too_early`` before the start time."""
    from api.services.money import settlement

    async with ctx.db.read() as s:
        session = await s.get(Session, session_id)
        if session is None:
            raise NotFound.of("session")
        if session.mentor_id != actor_id and actor_role != "admin":
            raise Forbidden("Only the session's mentor can end the class.")
        if session.status != SessionStatus.live:
            raise Conflict("This session is not live.", code="not_live")
        if now() < session.starts_at:
            raise settlement.too_early()
    return (await settlement.settle_session(ctx, session_id)).session


async def save_chat(ctx: Context, session_id: int, user_id: int, text: str, at: datetime) -> None:
    async with ctx.db.write() as s:
        s.add(ChatMessage(session_id=session_id, user_id=user_id, text=text[:2000], created_at=at))


async def chat_history(ctx: Context, session_id: int, user_id: int, role: str) -> list[dict[str, Any]]:
    """Chat kept with the session, for its participants (and admins)."""
    async with ctx.db.read() as s:
        session = await s.get(Session, session_id)
        if session is None:
            raise NotFound.of("session")
        if role != "admin" and await participant_role(s, session, user_id) is None:
            raise Forbidden("Only participants can read this chat.")
        rows = (
            await s.execute(
                select(ChatMessage, User.full_name)
                .join(User, User.id == ChatMessage.user_id)
                .where(ChatMessage.session_id == session_id)
                .order_by(ChatMessage.id)
            )
        ).all()
    return [{"from": name, "user_id": m.user_id, "text": m.text, "at": m.created_at.isoformat()} for m, name in rows]


async def save_talk_time(ctx: Context, session_id: int, seconds_by_user: dict[int, float]) -> None:
    """Per-participant talk time reported by the SFU, added to what the session has."""
    async with ctx.db.write() as s:
        session = await s.get(Session, session_id)
        if session is None:
            return
        merged = dict(session.talk_time or {})
        for uid, secs in seconds_by_user.items():
            merged[str(uid)] = round(float(merged.get(str(uid), 0.0)) + secs, 1)
        session.talk_time = merged


async def save_connection_quality(ctx: Context, session_id: int, seconds_by_user: dict[int, dict[str, float]]) -> None:
    """Seconds per connection quality level per participant (the SFU's scores), added to
    what the session has (a room can close and open again within one class)."""
    async with ctx.db.write() as s:
        session = await s.get(Session, session_id)
        if session is None:
            return
        merged = {k: dict(v) for k, v in (session.connection_quality or {}).items()}
        for uid, levels in seconds_by_user.items():
            per = merged.setdefault(str(uid), {})
            for level, secs in levels.items():
                per[level] = round(float(per.get(level, 0.0)) + secs, 1)
        session.connection_quality = merged


async def capacity_of(ctx: Context, session_id: int) -> int:
    async with ctx.db.read() as s:
        capacity = await s.scalar(select(Session.capacity).where(Session.id == session_id))
    if capacity is None:
        raise NotFound.of("session")
    return int(capacity)
