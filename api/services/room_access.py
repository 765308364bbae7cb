"""Who may open a room's page, and how room tokens live and die with the login session.

``room_entry`` is the room page's door: the session's mentor and its booked learners get
the room; anyone else a readable refusal (drafts and unknown rooms read as not found).


A room token is a signed, short-lived JWT for one room; its row in
``room_tokens`` is what admission checks (``rooms.admit`` refuses a row whose
``expires_at`` has passed). Each row remembers the access token (``jti``) it
was issued to, so signing out revokes that session's room tokens, and a
password change or deactivation revokes every room token of the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.models import RoomToken, Session, SessionStatus, User
from api.services.errors import Forbidden, NotFound
from api.services.rooms import participant_role

ROOM_NOT_FOUND = "We couldn't find this session's room."
ROOM_FORBIDDEN = "This room is only for the session's mentor and the learners who booked it."


@dataclass(frozen=True)
class RoomEntry:
    """The room a signed-in user may enter: what its page shows, and their role in it."""

    session_id: int
    title: str
    status: SessionStatus
    mentor_name: str
    role: str  # "mentor" | "learner"


def _now() -> datetime:
    return datetime.now(UTC)


async def room_entry(db: Database, session_id: int, user_id: int) -> RoomEntry:
    """The room of ``session_id`` as ``user_id`` may enter it; 404 for an unknown room or a
    draft they are not part of, 403 for anyone but its mentor and booked learners."""
    async with db.read() as s:
        session = await s.get(Session, session_id)
        if session is None:
            raise NotFound(ROOM_NOT_FOUND)
        role = await participant_role(s, session, user_id)
        if role is None:
            if session.status == SessionStatus.draft:
                raise NotFound(ROOM_NOT_FOUND)
            raise Forbidden(ROOM_FORBIDDEN)
        mentor = await s.get(User, session.mentor_id)
    return RoomEntry(session.id, session.title, session.status, mentor.full_name if mentor else "", role)


async def bind_to_session(db: Database, room_jti: str, access_jti: str) -> None:
    """Record which login session a freshly issued room token belongs to."""
    async with db.write() as s:
        await s.execute(update(RoomToken).where(RoomToken.jti == room_jti).values(access_jti=access_jti))


async def still_valid(db: Database, room_jti: str) -> bool:
    """False once the room token was revoked (or has expired)."""
    async with db.read() as s:
        expires = await s.scalar(select(RoomToken.expires_at).where(RoomToken.jti == room_jti))
    return expires is not None and expires > _now()


async def revoke_for_session(s: AsyncSession, access_jti: str) -> None:
    """Stage: the room tokens issued to this login session stop working (logout)."""
    now = _now()
    await s.execute(
        update(RoomToken).where(RoomToken.access_jti == access_jti, RoomToken.expires_at > now).values(expires_at=now)
    )


async def revoke_for_user(s: AsyncSession, user_id: int) -> None:
    """Stage: every room token of this account stops working (password change, deactivation)."""
    now = _now()
    await s.execute(
        update(RoomToken).where(RoomToken.user_id == user_id, RoomToken.expires_at > now).values(expires_at=now)
    )


async def revoke_for_seat(s: AsyncSession, session_id: int, user_id: int | None = None) -> None:
    """Stage: the room tokens for this class stop working, of one participant (a cancelled
    booking) or of everyone (a cancelled class). A socket already in the room is closed by
    its revocation watcher: a refunded seat does not keep attending (docs/money.md)."""
    now = _now()
    conds = [RoomToken.session_id == session_id, RoomToken.expires_at > now]
    if user_id is not None:
        conds.append(RoomToken.user_id == user_id)
    await s.execute(update(RoomToken).where(*conds).values(expires_at=now))
