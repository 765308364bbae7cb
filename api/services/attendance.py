"""Who was in a live room, and when: the SFU's participant joined/left events, kept per participant.

The room engine reports ``participant-joined`` / ``participant-left`` (``api.live_rooms``
feeds them here); each join opens an :class:`AttendanceInterval`, each leave closes
the participant's open one. Settlement (``api.services.money.settlement``) reads these
intervals to decide who attended, who was a no-show and whether the class took
place at all: money follows what the SFU saw, not what anyone claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import AttendanceInterval


def utcnow() -> datetime:
    return datetime.now(UTC)


async def record_join(
    ctx: Context, session_id: int, user_id: int, role: str, peer_id: str = "", at: datetime | None = None
) -> None:
    """A participant's peer entered the room: open an interval.

    A participant who reconnects is first reported as left (``replaced``), so an
    interval still open here is a leave we never heard of (a crashed process):
    it is closed at this join rather than counted twice."""
    at = at or utcnow()
    async with ctx.db.write() as s:
        await _close_open(s, session_id, user_id, at)
        s.add(
            AttendanceInterval(
                session_id=session_id, user_id=user_id, role=role[:20], peer_id=peer_id[:64], joined_at=at
            )
        )


async def record_leave(ctx: Context, session_id: int, user_id: int, at: datetime | None = None) -> None:
    """A participant's peer left the room (left, disconnected, replaced, room ended)."""
    async with ctx.db.write() as s:
        await _close_open(s, session_id, user_id, at or utcnow())


async def close_all(s: AsyncSession, session_id: int, at: datetime) -> None:
    """Inside the settling transaction: the room is over, every open interval ends at ``at``."""
    for row in (
        await s.scalars(
            select(AttendanceInterval).where(
                AttendanceInterval.session_id == session_id, AttendanceInterval.left_at.is_(None)
            )
        )
    ).all():
        row.left_at = max(at, row.joined_at)


async def _close_open(s: AsyncSession, session_id: int, user_id: int, at: datetime) -> None:
    for row in (
        await s.scalars(
            select(AttendanceInterval).where(
                AttendanceInterval.session_id == session_id,
                AttendanceInterval.user_id == user_id,
                AttendanceInterval.left_at.is_(None),
            )
        )
    ).all():
        row.left_at = max(at, row.joined_at)


@dataclass(frozen=True)
class Presence:
    """What the SFU saw of one session, per user: whether they joined, and for how long."""

    joined: frozenset[int]
    seconds: dict[int, float]

    def was_there(self, user_id: int) -> bool:
        return user_id in self.joined

    def connected_for(self, user_id: int) -> timedelta:
        return timedelta(seconds=self.seconds.get(user_id, 0.0))


async def presence(s: AsyncSession, session_id: int, *, since: datetime, until: datetime) -> Presence:
    """Who joined the room at all, and each user's connected time within [since, until]
    (an interval still open counts until ``until``)."""
    rows = (await s.scalars(select(AttendanceInterval).where(AttendanceInterval.session_id == session_id))).all()
    joined: set[int] = set()
    seconds: dict[int, float] = {}
    for r in rows:
        joined.add(r.user_id)
        start = max(r.joined_at, since)
        end = min(r.left_at or until, until)
        if end > start:
            seconds[r.user_id] = seconds.get(r.user_id, 0.0) + (end - start).total_seconds()
    return Presence(frozenset(joined), seconds)


async def intervals(s: AsyncSession, session_id: int) -> list[AttendanceInterval]:
    return list(
        (
            await s.scalars(
                select(AttendanceInterval)
                .where(AttendanceInterval.session_id == session_id)
                .order_by(AttendanceInterval.id)
            )
        ).all()
    )
