"""Issue 26, time zones everywhere: e-mails and notifications that embed a time say it in the
recipient's profile zone and name the zone, never a bare UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from zoneinfo import ZoneInfo

from api.keys import DB
from api.models import Session
from api.services.local_time import spoken
from tests.api.market import book, confirm_proposal, published
from tests.api.test_requests import ask
from tests.conftest import delivered_mail, signup

TOKYO = ZoneInfo("Asia/Tokyo")


def _tokyo(value) -> str:
    local = value.astimezone(TOKYO)
    return f"{local.day} {local:%b %Y, %H:%M} JST (Asia/Tokyo)"


async def _starts(client, sid):
    async with client.app[DB].read() as s:
        return (await s.get(Session, sid)).starts_at


async def _notes(user) -> list[dict]:
    return (await (await user.get("/api/notifications")).json())["items"]


def test_spoken_names_the_zone_and_falls_back_to_utc():
    at = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    assert spoken(at, "Asia/Tokyo") == "Mon 4 Jan 2027, 17:00 JST (Asia/Tokyo)"
    assert spoken(at, "Not/AZone") == "Mon 4 Jan 2027, 08:00 UTC"  # the zone named once


async def test_booking_mail_and_notifications_speak_tokyo_time(client, mentor):
    learner = await signup(client, "learner", timezone="Asia/Tokyo")
    sid = (await published(mentor, title="Tokyo evening"))["id"]
    resp = await book(learner, sid)
    assert resp.status == 201, await resp.text()
    starts = await _starts(client, sid)

    mails = [message_from_bytes(p.read_bytes()) for p in (await delivered_mail(client)).glob("*.eml")]
    mail = next(m for m in mails if str(m["Subject"]).startswith("Booking confirmed") and learner.email in m["To"])
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert f"Starts: {spoken(starts, 'Asia/Tokyo')}" in text and _tokyo(starts) in text
    assert " UTC" not in text

    (booked,) = [n for n in await _notes(learner) if n["kind"] == "booking.created"]
    assert booked["body"] == f"Your seat is confirmed for {spoken(starts, 'Asia/Tokyo')}."
    assert _tokyo(starts) in booked["body"]

    # the mentor moves the class: the learner's 'Time changed' note is in Tokyo time too
    moved = (starts + timedelta(hours=2)).isoformat()
    resp = await mentor.post(f"/api/sessions/{sid}/update", json={"starts_at": moved})
    assert resp.status == 200, await resp.text()
    new_start = await _starts(client, sid)
    changed = next(n for n in await _notes(learner) if n["kind"] == "session.updated")
    assert changed["body"] == f"Now starts {spoken(new_start, 'Asia/Tokyo')}." and "JST (Asia/Tokyo)" in changed["body"]

    # and cancelled: the refund notice names the Tokyo time
    assert (await mentor.post(f"/api/sessions/{sid}/cancel", json={})).status == 200
    cancelled = next(n for n in await _notes(learner) if n["kind"] == "session.cancelled")
    assert _tokyo(new_start) in cancelled["body"]


async def test_request_proposal_and_confirmation_speak_each_readers_zone(client):
    """The Tokyo learner reads the proposal and their seat in Tokyo time; the mentor in
    Berlin reads the confirmation in Berlin time."""
    learner = await signup(client, "learner", timezone="Asia/Tokyo")
    mentor = await signup(client, "mentor", timezone="Europe/Berlin", domains=["Programming"])
    rid, times = await ask(learner, mentor_id=mentor.id)
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]})
    assert resp.status == 200, await resp.text()
    starts = datetime.fromisoformat(times[0])
    proposed = next(n for n in await _notes(learner) if n["kind"] == "request.proposed")
    assert f"proposes {spoken(starts, 'Asia/Tokyo')} for free" in proposed["body"]
    assert "UTC" not in proposed["body"]
    assert (await confirm_proposal(learner, rid)).status == 200
    seat = next(n for n in await _notes(learner) if n["kind"] == "request.accepted")
    assert seat["body"] == f"Your seat is confirmed for {spoken(starts, 'Asia/Tokyo')}."
    told = next(n for n in await _notes(mentor) if n["kind"] == "request.accepted")
    assert spoken(starts, "Europe/Berlin") in told["body"] and "(Europe/Berlin)" in told["body"]
