"""Requests: ask one mentor or a domain, real-time matching, accept race, decline, cancel, expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from api.context import Context
from api.keys import DB
from api.models import Booking, BookingStatus, Journal, Notification, Session, SessionStatus, utcnow
from api.services import requests as svc
from tests.api.test_realtime import next_of, ws_for
from tests.conftest import signup


def future(hours=48):
    return (utcnow() + timedelta(hours=hours)).isoformat()


def body(**kw):
    return {"topic": "Async Python", "domain": "Programming", "skills": ["asyncio"], "duration_min": 45,
            "preferred_times": [future(24), future(48)], "description": "Help me with asyncio", **kw}


async def kinds(client, user_id):
    async with client.app[DB].read() as s:
        return [n.kind for n in (await s.scalars(select(Notification).where(
            Notification.user_id == user_id))).all()]


async def test_targeted_request_notifies_that_mentor_in_real_time(client, learner, mentor):
    other = await signup(client, "mentor", domains=["Programming"])
    ws = await ws_for(mentor)
    resp = await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))
    assert resp.status == 201, await resp.text()
    req = await resp.json()
    assert req["status"] == "open" and req["mentor"]["id"] == mentor.id and req["learner"]["id"] == learner.id
    msg = await next_of(ws, "request.new")
    assert msg["data"]["id"] == req["id"]
    assert (await next_of(ws, "notification"))["data"]["kind"] == "request.new"
    assert await kinds(client, mentor.id) == ["request.new"]
    assert await kinds(client, other.id) == []
    await ws.close()


async def test_domain_request_reaches_every_matching_mentor(client, learner, mentor):
    also = await signup(client, "mentor", domains=["programming", "Design"])
    elsewhere = await signup(client, "mentor", domains=["Cooking"])
    resp = await learner.post("/api/requests/create", json=body())
    assert resp.status == 201
    assert await kinds(client, mentor.id) == ["request.new"]
    assert await kinds(client, also.id) == ["request.new"]
    assert await kinds(client, elsewhere.id) == []
    # Listing: learner own, matching mentors see it, the other mentor does not, admin sees all.
    rid = (await resp.json())["id"]
    assert [r["id"] for r in (await (await learner.get("/api/requests")).json())["items"]] == [rid]
    assert [r["id"] for r in (await (await mentor.get("/api/requests")).json())["items"]] == [rid]
    assert (await (await elsewhere.get("/api/requests")).json())["items"] == []
    assert (await elsewhere.get(f"/api/requests/{rid}")).status == 404


async def test_create_refusals(client, learner, mentor):
    assert (await client.post("/api/requests/create", json=body())).status == 401
    assert (await mentor.post("/api/requests/create", json=body())).status == 403
    past = body(preferred_times=[(utcnow() - timedelta(hours=1)).isoformat()])
    resp = await learner.post("/api/requests/create", json=past)
    assert resp.status == 400 and "preferred_times" in (await resp.json())["error"]["fields"]
    assert (await learner.post("/api/requests/create", json=body(mentor_id=learner.id))).status == 400
    assert (await learner.post("/api/requests/create", json=body(mentor_id=10**9))).status == 400
    assert (await learner.post("/api/requests/create", json=body(preferred_times=[]))).status == 400
    assert (await learner.post("/api/requests/create", json=body(role="admin"))).status == 400


async def test_cancel_owner_only_and_only_open(client, learner, mentor):
    other = await signup(client, "learner")
    rid = (await (await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))).json())["id"]
    assert (await other.post(f"/api/requests/{rid}/cancel")).status == 404
    assert (await mentor.post(f"/api/requests/{rid}/cancel")).status == 403
    resp = await learner.post(f"/api/requests/{rid}/cancel")
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    assert (await learner.post(f"/api/requests/{rid}/cancel")).status == 409
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": future(30)})
    assert resp.status == 409


async def test_accept_creates_scheduled_session_with_learner_booked(client, learner, mentor):
    rid = (await (await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))).json())["id"]
    ws = await ws_for(learner)
    starts = future(30)
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": starts, "title": "Asyncio 1:1"})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["request"]["status"] == "accepted" and data["request"]["session_id"] == data["session_id"]
    note = await next_of(ws, "notification")
    assert note["data"]["kind"] == "request.accepted" and str(data["session_id"]) in note["data"]["link"]
    async with client.app[DB].read() as s:
        sess = await s.get(Session, data["session_id"])
        booking = await s.get(Booking, data["booking_id"])
    assert sess.status == SessionStatus.scheduled and sess.mentor_id == mentor.id
    assert sess.title == "Asyncio 1:1" and sess.duration_min == 45 and sess.price_cents == 0
    assert sess.seats_taken == 1 and sess.capacity == 1
    assert booking.learner_id == learner.id and booking.status == BookingStatus.confirmed
    # The learner gets the same confirmation e-mail with a calendar invite as any booking.
    from email import message_from_bytes, policy

    from api.keys import SETTINGS

    mails = [message_from_bytes(f.read_bytes(), policy=policy.default)
             for f in client.app[SETTINGS].outbox_dir.glob("*.eml")]
    confirmations = [m for m in mails if m["To"] == learner.email and "Booking confirmed" in m["Subject"]]
    assert len(confirmations) == 1
    assert any(part.get_content_type() == "text/calendar" for part in confirmations[0].iter_attachments())
    # Now decided: neither cancel nor a second accept nor decline.
    assert (await learner.post(f"/api/requests/{rid}/cancel")).status == 409
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": starts})).status == 409
    assert (await mentor.post(f"/api/requests/{rid}/decline")).status == 409
    await ws.close()


async def test_priced_accept_charges_through_the_ledger(client, learner, mentor):
    rid = (await (await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))).json())["id"]
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": future(30), "price_cents": 2500})
    assert resp.status == 200
    data = await resp.json()
    async with client.app[DB].read() as s:
        journal = await s.scalar(select(Journal).where(Journal.booking_id == data["booking_id"]))
        booking = await s.get(Booking, data["booking_id"])
    assert journal is not None and journal.kind == "charge"
    assert booking.price_cents == 2500 and booking.payment_ref


async def test_accept_refusals(client, learner, mentor):
    other_mentor = await signup(client, "mentor", domains=["Programming"])
    rid = (await (await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))).json())["id"]
    assert (await other_mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": future()})).status == 404
    assert (await learner.post(f"/api/requests/{rid}/accept", json={"starts_at": future()})).status == 403
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": past})).status == 400
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={})).status == 400
    assert (await mentor.post("/api/requests/999999/accept", json={"starts_at": future()})).status == 404


async def test_two_mentors_accepting_at_once_exactly_one_wins(client, learner, mentor):
    rivals = [mentor] + [await signup(client, "mentor", domains=["Programming"]) for _ in range(3)]
    for _ in range(3):
        rid = (await (await learner.post("/api/requests/create", json=body())).json())["id"]
        results = await asyncio.gather(*(m.post(f"/api/requests/{rid}/accept", json={"starts_at": future(30)})
                                         for m in rivals))
        statuses = sorted(r.status for r in results)
        assert statuses == [200, 409, 409, 409], statuses
        async with client.app[DB].read() as s:
            sessions = (await s.scalars(select(Session).where(Session.title == "Async Python"))).all()
            bookings = (await s.scalars(select(Booking).where(Booking.learner_id == learner.id))).all()
        assert len(sessions) == len(bookings)
    assert len(sessions) == 3


async def test_decline_targeted_and_pass_on_open(client, learner, mentor):
    rid = (await (await learner.post("/api/requests/create", json=body(mentor_id=mentor.id))).json())["id"]
    resp = await mentor.post(f"/api/requests/{rid}/decline")
    assert resp.status == 200 and (await resp.json())["status"] == "declined"
    assert "request.declined" in await kinds(client, learner.id)
    # An open-to-all request: declining leaves the mentor's list, stays open for the others.
    other = await signup(client, "mentor", domains=["Programming"])
    oid = (await (await learner.post("/api/requests/create", json=body())).json())["id"]
    resp = await mentor.post(f"/api/requests/{oid}/decline")
    assert resp.status == 200 and (await resp.json())["status"] == "open"
    ids = [r["id"] for r in (await (await mentor.get("/api/requests?status=open")).json())["items"]]
    assert oid not in ids
    ids = [r["id"] for r in (await (await other.get("/api/requests?status=open")).json())["items"]]
    assert oid in ids
    assert (await learner.post(f"/api/requests/{oid}/decline")).status == 403


async def test_expire_when_all_preferred_times_passed(client, learner, mentor):
    soon = (utcnow() + timedelta(minutes=30)).isoformat()
    later = future(72)
    a = (await (await learner.post("/api/requests/create", json=body(preferred_times=[soon]))).json())["id"]
    b = (await (await learner.post("/api/requests/create", json=body(preferred_times=[soon, later]))).json())["id"]
    ctx = Context.of(client.app)
    expired = await svc.expire_due(ctx, now=utcnow() + timedelta(hours=1))
    assert expired == [a]
    assert await svc.expire_due(ctx, now=utcnow() + timedelta(hours=1)) == []
    mine = {r["id"]: r["status"] for r in (await (await learner.get("/api/requests")).json())["items"]}
    assert mine == {a: "expired", b: "open"}
    assert "request.expired" in await kinds(client, learner.id)
