"""Room tokens live and die with the login session that asked for them.

A room token is a signed, short-lived JWT for one room; its row in
``room_tokens`` is what admission checks (``rooms.admit`` refuses a row whose
``expires_at`` has passed). Each row remembers the access token (``jti``) it
was issued to, so signing out revokes that session's room tokens, and a
password change or deactivation revokes every room token of the account.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.models import RoomToken


def _now() -> datetime:
    return datetime.now(UTC)


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
    await s.execute(update(RoomToken).where(RoomToken.access_jti == access_jti,
                                            RoomToken.expires_at > now).values(expires_at=now))


async def revoke_for_user(s: AsyncSession, user_id: int) -> None:
    """Stage: every room token of this account stops working (password change, deactivation)."""
    now = _now()
    await s.execute(update(RoomToken).where(RoomToken.user_id == user_id,
                                            RoomToken.expires_at > now).values(expires_at=now))
