"""E-mail reminders 24 h and 1 h before a class: once each per person with two server processes
racing, in the recipient's time zone with the room link, only to people already in the class
at that time, and never to someone who turned them off in their profile."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from zoneinfo import ZoneInfo

from sqlalchemy import update

from api.app import create_app
from api.context import Context
from api.keys import DB
from api.models import Booking, Session, utcnow
from api.services import reminder_mail, scheduler
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import delivered_mail, signup


async def reminder_mails(client) -> list[Message]:
    outbox = await delivered_mail(client)
    mails = [message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    return [m for m in mails if str(m["Subject"]).startswith("Reminder:")]


def body_of(m: Message) -> str:
    part = m if not m.is_multipart() else next(p for p in m.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()  # type: ignore[union-attr]


async def starts_of(client, sid: int):
    async with client.app[DB].read() as s:
        return (await s.get(Session, sid)).starts_at


async def test_24h_and_1h_reminders_once_each_across_two_processes(aiohttp_client, client, settings, mentor):
    learner = await signup(client, "learner", timezone="Asia/Kolkata")
    sid = await make_session(client, mentor.id, starts_in=timedelta(hours=30), title="Graph algorithms")
    await book(client, sid, learner.id)
    start = await starts_of(client, sid)
    booked_at = start - timedelta(hours=30)
    async with client.app[DB].write() as s:  # booked when the class was 30 h away
        await s.execute(update(Booking).where(Booking.session_id == sid).values(created_at=booked_at))
    second = await aiohttp_client(create_app(settings))
    ctx_a, ctx_b = Context.of(client.app), Context.of(second.app)

    async def both(now):
        results = await asyncio.gather(*(scheduler.run_once(c, now=now) for c in (ctx_a, ctx_b, ctx_a, ctx_b)))
        return sorted(k for r in results for k in r.mail_reminders)

    assert await both(start - timedelta(hours=25)) == []
    day = await both(start - timedelta(hours=23, minutes=59))
    assert day == sorted([f"mail-reminder:24h:{sid}:0:{learner.id}", f"mail-reminder:24h:{sid}:0:{mentor.id}"])
    assert await both(start - timedelta(hours=12)) == []  # already sent: not again
    hour = await both(start - timedelta(minutes=59))
    assert hour == sorted([f"mail-reminder:1h:{sid}:0:{learner.id}", f"mail-reminder:1h:{sid}:0:{mentor.id}"])
    assert await both(start - timedelta(minutes=30)) == []
    assert await both(start - timedelta(minutes=2)) == []

    mails = await reminder_mails(client)
    got = sorted((str(m["To"]), str(m["Subject"])) for m in mails)
    assert got == sorted(
        [
            (learner.email, "Reminder: Graph algorithms starts tomorrow"),
            (mentor.email, "Reminder: Graph algorithms starts tomorrow"),
            (learner.email, "Reminder: Graph algorithms starts in 1 hour"),
            (mentor.email, "Reminder: Graph algorithms starts in 1 hour"),
        ]
    )
    to_learner = next(m for m in mails if m["To"] == learner.email)
    text = body_of(to_learner)
    local = start.astimezone(ZoneInfo("Asia/Kolkata"))
    assert f"{local:%H:%M} IST (Asia/Kolkata)" in text
    assert f"http://testserver/room/{sid}" in text


async def test_a_class_booked_late_skips_the_24h_reminder(client, learner, mentor):
    sid = await make_session(client, mentor.id, starts_in=timedelta(hours=3))
    await book(client, sid, learner.id)  # booked now, 3 h ahead
    start = await starts_of(client, sid)
    ctx = Context.of(client.app)
    assert await reminder_mail.send_due(ctx, start - timedelta(hours=2)) == []
    sent = await reminder_mail.send_due(ctx, start - timedelta(minutes=50))
    assert sorted(sent) == sorted([f"mail-reminder:1h:{sid}:0:{learner.id}", f"mail-reminder:1h:{sid}:0:{mentor.id}"])


async def test_opted_out_users_get_no_reminders(client, mentor):
    learner = await signup(client, "learner")
    resp = await learner.post(
        f"/api/users/{learner.id}/update", json={"preferences": {"remind_email_24h": False, "remind_email_1h": True}}
    )
    assert resp.status == 200, await resp.text()
    quiet = await signup(client, "learner")
    assert (
        await quiet.post(f"/api/users/{quiet.id}/update", json={"preferences": {"email_notifications": False}})
    ).status == 200
    sid = await make_session(client, mentor.id, starts_in=timedelta(hours=30))
    for uid in (learner.id, quiet.id):
        await book(client, sid, uid)
    start = await starts_of(client, sid)
    async with client.app[DB].write() as s:
        await s.execute(update(Booking).where(Booking.session_id == sid).values(created_at=start - timedelta(days=2)))
    ctx = Context.of(client.app)
    await reminder_mail.send_due(ctx, start - timedelta(hours=23))
    await reminder_mail.send_due(ctx, start - timedelta(minutes=55))
    got = sorted((str(m["To"]), str(m["Subject"]).rsplit(" ", 2)[-1]) for m in await reminder_mails(client))
    assert got == sorted([(mentor.email, "tomorrow"), (mentor.email, "hour"), (learner.email, "hour")])


async def test_cancelled_classes_and_seats_get_no_reminder(client, learner, mentor):
    sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=50))
    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == sid).values(created_at=utcnow() - timedelta(days=1)))
    bid = await book(client, sid, learner.id)
    async with client.app[DB].write() as s:
        await s.execute(update(Booking).where(Booking.id == bid).values(created_at=utcnow() - timedelta(days=1)))
    assert (await learner.post(f"/api/bookings/{bid}/cancel")).status == 200
    assert await reminder_mail.send_due(Context.of(client.app)) == []


async def test_a_moved_class_is_reminded_again_for_its_new_time(client, learner, mentor):
    sid = await make_session(client, mentor.id, starts_in=timedelta(hours=30))
    await book(client, sid, learner.id)
    start = await starts_of(client, sid)
    async with client.app[DB].write() as s:
        await s.execute(update(Booking).where(Booking.session_id == sid).values(created_at=start - timedelta(days=2)))
    ctx = Context.of(client.app)
    assert len(await reminder_mail.send_due(ctx, start - timedelta(hours=23))) == 2
    # Moved two days later (its SEQUENCE rises): the 24 h reminder is due again, for the new time.
    new_start = start + timedelta(days=2)
    resp = await mentor.post(f"/api/sessions/{sid}/update", json={"starts_at": new_start.isoformat()})
    assert resp.status == 200, await resp.text()
    again = await reminder_mail.send_due(ctx, new_start - timedelta(hours=23))
    assert sorted(again) == sorted(
        [f"mail-reminder:24h:{sid}:1:{learner.id}", f"mail-reminder:24h:{sid}:1:{mentor.id}"]
    )
