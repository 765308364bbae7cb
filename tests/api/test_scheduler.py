"""Scheduler: T–10 reminders exactly once across processes, completion, request expiry, the loop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from api.app import create_app
from api.context import Context
from api.keys import DB, SCHEDULER
from api.models import (
    Booking,
    BookingStatus,
    Journal,
    Notification,
    Request,
    RequestStatus,
    Session,
    SessionStatus,
    utcnow,
)
from api.services import scheduler
from api.services.money import ledger
from tests.api.classes import in_room
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import signup


async def reminders(client, user_id):
    async with client.app[DB].read() as s:
        return (
            await s.scalars(
                select(Notification).where(Notification.user_id == user_id, Notification.kind == "session.reminder")
            )
        ).all()


async def test_reminder_exactly_once_across_two_processes(aiohttp_client, client, settings, learner, mentor):
    other_learner = await signup(client, "learner")
    soon = await make_session(client, mentor.id, starts_in=timedelta(minutes=8))
    later = await make_session(client, mentor.id, starts_in=timedelta(minutes=30))
    for sid in (soon, later):
        await book(client, sid, learner.id)
    await book(client, soon, other_learner.id)
    # A second "process": another app on the same database.
    second = await aiohttp_client(create_app(settings))
    ctx_a, ctx_b = Context.of(client.app), Context.of(second.app)
    now = utcnow()
    for _ in range(3):
        results = await asyncio.gather(*(scheduler.run_once(c, now=now) for c in (ctx_a, ctx_b, ctx_a, ctx_b)))
        assert sum(len(r.reminders) for r in results) in (0, 1)
    for uid in (mentor.id, learner.id, other_learner.id):
        got = await reminders(client, uid)
        assert len(got) == 1, (uid, len(got))
        assert got[0].link == f"/room/{soon}"
    async with client.app[DB].read() as s:
        assert (await s.get(Session, soon)).reminder_sent_at is not None
        assert (await s.get(Session, later)).reminder_sent_at is None
    # Twenty minutes on, the later session's turn comes, once.
    await asyncio.gather(*(scheduler.run_once(c, now=now + timedelta(minutes=21)) for c in (ctx_a, ctx_b)))
    assert len(await reminders(client, learner.id)) == 2
    assert len(await reminders(client, other_learner.id)) == 1


async def test_no_reminder_for_cancelled_drafts_or_long_started(client, learner, mentor):
    for status in (SessionStatus.cancelled, SessionStatus.draft):
        sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=5), status=status)
        await book(client, sid, learner.id)
    await make_session(client, mentor.id, starts_in=timedelta(minutes=-30))
    result = await scheduler.run_once(Context.of(client.app))
    assert result.reminders == []
    assert await reminders(client, mentor.id) == []


async def test_session_nobody_started_is_refunded_not_paid(client, learner, mentor, settings):
    """Issue 14: a session nobody started was completed by the scheduler and the mentor paid."""
    grace = settings.room_grace_minutes
    over = await make_session(
        client, mentor.id, starts_in=timedelta(minutes=-(60 + grace + 1)), duration_min=60, price_cents=2000
    )
    bid = await book(client, over, learner.id)
    async with client.app[DB].write() as s:
        await ledger.record_charge(
            s,
            booking_id=bid,
            session_id=over,
            mentor_id=mentor.id,
            price_cents=2000,
            currency="USD",
            fee_percent=15,
            reference="t",
        )
    in_grace = await make_session(client, mentor.id, starts_in=timedelta(minutes=-(60 + grace - 5)))
    result = await scheduler.run_once(Context.of(client.app))
    assert result.completed == [over]
    async with client.app[DB].read() as s:
        assert (await s.get(Session, over)).status == SessionStatus.cancelled
        assert (await s.get(Session, in_grace)).status == SessionStatus.scheduled
        assert (await s.get(Booking, bid)).status == BookingStatus.cancelled
        kinds = (await s.scalars(select(Journal.kind).where(Journal.session_id == over))).all()
        assert sorted(kinds) == ["charge", "refund"]
        balances = await ledger.mentor_balances(s, mentor.id)
    assert balances.available == 0 and balances.pending == 0
    assert (await scheduler.run_once(Context.of(client.app))).completed == []


async def test_live_session_over_settles_and_releases_after_the_hold(client, learner, mentor, settings):
    grace = settings.room_grace_minutes
    start = utcnow() - timedelta(minutes=60 + grace + 1)
    over = await make_session(
        client,
        mentor.id,
        starts_in=timedelta(minutes=-(60 + grace + 1)),
        duration_min=60,
        price_cents=2000,
        status=SessionStatus.live,
    )
    bid = await book(client, over, learner.id)
    async with client.app[DB].write() as s:
        await ledger.record_charge(
            s,
            booking_id=bid,
            session_id=over,
            mentor_id=mentor.id,
            price_cents=2000,
            currency="USD",
            fee_percent=15,
            reference="t",
        )
    await in_room(client, over, mentor.id, "mentor", start, start + timedelta(minutes=60))
    await in_room(client, over, learner.id, "learner", start, start + timedelta(minutes=50))
    ctx = Context.of(client.app)
    result = await scheduler.run_once(ctx)
    assert result.completed == [over] and result.released == []
    async with client.app[DB].read() as s:
        assert (await s.get(Session, over)).status == SessionStatus.completed
        assert (await s.get(Booking, bid)).status == BookingStatus.attended
        assert (await ledger.mentor_balances(s, mentor.id)).pending == 1700
    assert (await scheduler.run_once(ctx, now=utcnow() + timedelta(hours=47))).released == []
    assert (await scheduler.run_once(ctx, now=utcnow() + timedelta(hours=49))).released == [bid]
    async with client.app[DB].read() as s:
        balances = await ledger.mentor_balances(s, mentor.id)
        kinds = (await s.scalars(select(Journal.kind).where(Journal.session_id == over))).all()
    assert (balances.available, balances.pending) == (1700, 0)
    assert sorted(kinds) == ["charge", "release"]
    assert (await scheduler.run_once(ctx, now=utcnow() + timedelta(hours=50))).released == []


async def test_expires_requests(client, learner, mentor):
    soon = (utcnow() + timedelta(minutes=20)).isoformat()
    resp = await learner.post(
        "/api/requests/create", json={"topic": "T", "domain": "Programming", "preferred_times": [soon]}
    )
    rid = (await resp.json())["id"]
    result = await scheduler.run_once(Context.of(client.app), now=utcnow() + timedelta(hours=1))
    assert result.expired_requests == [rid]
    async with client.app[DB].read() as s:
        assert (await s.get(Request, rid)).status == RequestStatus.expired


async def test_background_loop_runs_and_stops(aiohttp_client, settings, tmp_path):
    app = create_app(replace(settings, scheduler_enabled=True, scheduler_interval_seconds=0.05))
    cl = await aiohttp_client(app)
    sched = cl.app[SCHEDULER]
    await asyncio.wait_for(sched.started.wait(), 5)
    await asyncio.wait_for(sched.ran.wait(), 5)
    assert sched.runs >= 1
    await cl.close()
    assert sched.exited.is_set()
    await asyncio.wait_for(sched.stop(), 5)  # stopping again is harmless


async def test_disabled_scheduler_does_not_run(client):
    sched = client.app[SCHEDULER]
    assert not sched.started.is_set()
