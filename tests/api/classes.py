"""Helpers for tests where a class takes place (or not): the start moved into the past, who
was in the room recorded as the SFU's join/leave events would, the session settled, the
hold waited out. Money then follows the rules of ``api.services.money.settlement``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from api.context import Context
from api.keys import DB
from api.models import AttendanceInterval, Booking, Session, utcnow
from api.services import attendance
from api.services.money import settlement
from api.services.money.settlement import Settlement


async def move_start(client: TestClient, session_id: int, starts_at: datetime) -> None:
    """Time travel, not a mentor's move: the class and the terms its learners booked both
    start at ``starts_at`` (a mentor's move changes only the session: see docs/money.md)."""
    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == session_id).values(starts_at=starts_at))
        await s.execute(update(Booking).where(Booking.session_id == session_id).values(booked_starts_at=starts_at))


async def in_room(
    client: TestClient, session_id: int, user_id: int, role: str, joined: datetime, left: datetime | None = None
) -> None:
    """``user_id`` was connected to the room from ``joined`` (until ``left``, or still there)."""
    ctx = Context.of(client.app)
    await attendance.record_join(ctx, session_id, user_id, role, f"pe-test-{user_id}", joined)
    if left is not None:
        await attendance.record_leave(ctx, session_id, user_id, left)


async def take_place(
    client: TestClient,
    session_id: int,
    learners: Iterable[int] = (),
    *,
    mentor: bool = True,
    mentor_minutes: float | None = None,
) -> Settlement:
    """The class ran for its whole duration, ending now: the mentor in the room from the start
    (for ``mentor_minutes`` if given), the given learners joined; then it is settled."""
    async with client.app[DB].read() as s:
        sess = await s.scalar(select(Session).where(Session.id == session_id))
        assert sess is not None
        mentor_id, duration = sess.mentor_id, sess.duration_min
    now = utcnow()
    start = now - timedelta(minutes=duration)
    await move_start(client, session_id, start)
    if mentor:
        left = start + timedelta(minutes=mentor_minutes) if mentor_minutes is not None else None
        await in_room(client, session_id, mentor_id, "mentor", start - timedelta(minutes=1), left)
    for uid in learners:
        await in_room(client, session_id, uid, "learner", start + timedelta(minutes=1))
    return await settlement.settle_session(Context.of(client.app), session_id)


async def after_hold(client: TestClient, session_id: int | None = None, hours: float = 24 * 31) -> list[int]:
    """Time passes beyond any hold: the scheduler's release job pays what is due."""
    return await settlement.release_due(
        Context.of(client.app), utcnow() + timedelta(hours=hours), session_id=session_id
    )


async def room_ran_for(client: TestClient, session_id: int, minutes: float = 30) -> None:
    """Time travel for a real room: everyone who joined has been connected ``minutes`` longer
    and the class started a minute after the room opened, so what the SFU saw counts as a
    class by docs/money.md; the terms booked move with it."""
    start = utcnow() - timedelta(minutes=minutes - 1)
    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == session_id).values(starts_at=start))
        await s.execute(update(Booking).where(Booking.session_id == session_id).values(booked_starts_at=start))
        rows = await s.scalars(select(AttendanceInterval).where(AttendanceInterval.session_id == session_id))
        for row in rows.all():
            row.joined_at = row.joined_at - timedelta(minutes=minutes)
