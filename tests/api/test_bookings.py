"""Bookings: create (rules, idempotency, payment, e-mail with .ics, seat push), list, get, cancel."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email import message_from_bytes

from api.context import Context
from api.keys import BROKER
from api.services import catalog
from api.services.ics import event, fold
from tests.api.market import book, draft, published, quick_users, set_platform, shift_start, trial_balance
from tests.conftest import delivered_mail, signup


async def test_book_success_payment_notifications_email(client, learner, mentor):
    pub = await published(mentor, price_cents=2500)
    resp = await book(learner, pub["id"])
    assert resp.status == 201, await resp.text()
    b = await resp.json()
    assert b["status"] == "confirmed" and b["price_cents"] == 2500 and b["test_mode"] is True
    assert b["payment_ref"].startswith("sandbox_ch_") and b["session"]["title"] == pub["title"]
    detail = await (await learner.get(f"/api/sessions/{pub['id']}")).json()
    assert detail["seats_left"] == 4 and detail["booked"] is True
    for who in (learner, mentor):
        notes = await (await who.get("/api/notifications")).json()
        items = notes["items"] if isinstance(notes, dict) else notes
        assert any(n["kind"] == "booking.created" for n in items)
    outbox = await delivered_mail(client)
    mails = [message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    mine = [m for m in mails if m["To"] == learner.email and "Booking confirmed" in m["Subject"]]
    assert len(mine) == 1
    ics = [part for part in mine[0].walk() if part.get_content_type() == "text/calendar"]
    assert len(ics) == 1
    text = ics[0].get_payload(decode=True).decode()
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    for field in (
        "BEGIN:VEVENT",
        "UID:booking-",
        "DTSTAMP:",
        "DTSTART:",
        "DTEND:",
        "SUMMARY:PeerLearn",
        f"URL:http://testserver/sessions/{pub['id']}",
    ):
        assert field in text, field
    start = datetime.fromisoformat(pub["starts_at"]).astimezone(timezone.utc)
    assert f"DTSTART:{start:%Y%m%dT%H%M%S}Z" in text
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and tb["negative_accounts"] == {}


async def test_book_refusals(client, learner, mentor, admin):
    pub = await published(mentor, capacity=1)
    assert (await client.post("/api/bookings/create", json={"session_id": pub["id"]})).status == 401
    assert (await mentor.post("/api/bookings/create", json={"session_id": pub["id"]})).status == 403
    assert (await admin.post("/api/bookings/create", json={"session_id": pub["id"]})).status == 403
    assert (await learner.post("/api/bookings/create", json={})).status == 400
    assert (await learner.post("/api/bookings/create", json={"session_id": "x"})).status == 400
    assert (await learner.post("/api/bookings/create", data="{nope")).status == 400
    assert (await book(learner, 999999)).status == 404
    d = await draft(mentor)
    assert (await book(learner, d["id"])).status == 404
    assert (await book(learner, pub["id"])).status == 201
    resp = await book(learner, pub["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_booked"
    other = (await quick_users(client, 1))[0]
    resp = await book(other, pub["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "sold_out"
    past = await published(mentor)
    await shift_start(client, past["id"], datetime.now(timezone.utc) - timedelta(minutes=1))
    resp = await book(other, past["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_started"
    gone = await published(mentor)
    await mentor.post(f"/api/sessions/{gone['id']}/cancel")
    resp = await book(other, gone["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_cancelled"
    live = await published(mentor)
    await catalog.start_session(Context.of(client.app), live["id"])
    resp = await book(other, live["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_not_bookable"
    assert (await book(other, pub["id"], key="x" * 200)).status == 400


async def test_own_session_refused_in_service(client, mentor):
    from api.services import bookings
    from api.services.errors import Conflict

    pub = await published(mentor)

    class Me:
        id = mentor.id
        role = "learner"

    try:
        await bookings.create_booking(Context.of(client.app), Me(), pub["id"])
    except Conflict as err:
        assert err.code == "own_session"
    else:
        raise AssertionError("booked own session")


async def test_idempotency_key(client, learner, mentor):
    pub = await published(mentor)
    pub2 = await published(mentor)
    first = await book(learner, pub["id"], key="abc-123")
    assert first.status == 201
    again = await book(learner, pub["id"], key="abc-123")
    assert again.status == 200
    assert await again.json() == await first.json()
    other = await book(learner, pub2["id"], key="abc-123")
    assert other.status == 422 and (await other.json())["error"]["code"] == "idempotency_mismatch"
    bookings = await (await learner.get("/api/bookings")).json()
    assert bookings["total"] == 1
    # another learner may use the same key for their own booking
    l2 = (await quick_users(client, 1))[0]
    assert (await book(l2, pub["id"], key="abc-123")).status == 201


async def test_cancel_with_and_without_refund(client, learner, mentor):
    await set_platform(client, refund_window_hours=24)
    early = await published(mentor, price_cents=4000)
    late = await published(mentor, price_cents=4000)
    b1 = await (await book(learner, early["id"])).json()
    b2 = await (await book(learner, late["id"])).json()
    await shift_start(client, late["id"], datetime.now(timezone.utc) + timedelta(hours=3))
    r1 = await learner.post(f"/api/bookings/{b1['id']}/cancel")
    assert r1.status == 200, await r1.text()
    d1 = await r1.json()
    assert d1["refund_cents"] == 4000 and d1["booking"]["status"] == "cancelled" and d1["booking"]["refunded"]
    assert d1["seats_left"] == 5
    r2 = await learner.post(f"/api/bookings/{b2['id']}/cancel")
    d2 = await r2.json()
    assert d2["refund_cents"] == 0 and d2["booking"]["refunded"] is False and d2["seats_left"] == 5
    assert (await learner.post(f"/api/bookings/{b1['id']}/cancel")).status == 409
    # the seat is free again: the learner may book once more
    assert (await book(learner, early["id"])).status == 201
    earnings = await (await mentor.get("/api/earnings")).json()
    # the late cancellation's money stays with the mentor (pending until completion); 15% fee
    assert earnings["pending_cents"] == 3400 * 2
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and tb["negative_accounts"] == {}


async def test_cancel_refusals(client, learner, mentor, admin):
    pub = await published(mentor)
    b = await (await book(learner, pub["id"])).json()
    other = (await quick_users(client, 1))[0]
    assert (await other.post(f"/api/bookings/{b['id']}/cancel")).status == 404
    assert (await mentor.post(f"/api/bookings/{b['id']}/cancel")).status == 403
    assert (await client.post(f"/api/bookings/{b['id']}/cancel")).status == 401
    assert (await learner.post("/api/bookings/999999/cancel")).status == 404
    # A room opened early does not stop a cancellation before the start; the start does.
    await catalog.start_session(Context.of(client.app), pub["id"])
    await shift_start(client, pub["id"], datetime.now(timezone.utc) - timedelta(minutes=1))
    resp = await learner.post(f"/api/bookings/{b['id']}/cancel")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_started"


async def test_list_and_get(client, learner, mentor, admin):
    a = await published(mentor)
    c = await published(mentor)
    ba = await (await book(learner, a["id"])).json()
    bc = await (await book(learner, c["id"])).json()
    await learner.post(f"/api/bookings/{bc['id']}/cancel")
    up = await (await learner.get("/api/bookings?when=upcoming")).json()
    assert [b["id"] for b in up["items"]] == [ba["id"]]
    past = await (await learner.get("/api/bookings?when=past")).json()
    assert [b["id"] for b in past["items"]] == [bc["id"]]
    assert (await learner.get("/api/bookings?when=later")).status == 400
    assert (await mentor.get("/api/bookings")).status == 403
    assert (await client.get("/api/bookings")).status == 401
    other = (await quick_users(client, 1))[0]
    assert (await other.get("/api/bookings")).status == 200
    assert (await (await other.get("/api/bookings")).json())["total"] == 0
    assert (await learner.get(f"/api/bookings/{ba['id']}")).status == 200
    assert (await mentor.get(f"/api/bookings/{ba['id']}")).status == 200
    assert (await admin.get(f"/api/bookings/{ba['id']}")).status == 200
    assert (await other.get(f"/api/bookings/{ba['id']}")).status == 404
    stranger = await signup(client, "mentor")
    assert (await stranger.get(f"/api/bookings/{ba['id']}")).status == 404


async def test_seat_changes_are_pushed(client, learner, mentor):
    pub = await published(mentor, capacity=3)
    sub = await client.app[BROKER].subscribe({f"session:{pub['id']}"})
    try:
        b = await (await book(learner, pub["id"])).json()
        msg = await asyncio.wait_for(sub.__aiter__().__anext__(), 5)
        assert msg == {"type": "seats", "data": {"session_id": pub["id"], "seats_left": 2}}
        await learner.post(f"/api/bookings/{b['id']}/cancel")
        msg = await asyncio.wait_for(sub.__aiter__().__anext__(), 5)
        assert msg == {"type": "seats", "data": {"session_id": pub["id"], "seats_left": 3}}
    finally:
        await sub.close()


def test_ics_folding_and_escaping():
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    raw = event(
        uid="u@x",
        start=start,
        end=start + timedelta(hours=1),
        summary="Semi; colon, comma\nand a very long title " + "é" * 80,
        stamp=start,
    ).decode()
    lines = raw.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = raw.replace("\r\n ", "")
    assert "SUMMARY:Semi\\; colon\\, comma\\nand a very long title" in unfolded
    assert "DTSTART:20300102T030405Z" in unfolded and "DTEND:20300102T040405Z" in unfolded
    assert fold("short") == "short"
