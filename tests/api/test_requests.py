"""Requests: ask one mentor or a domain, real-time matching, the mentor's proposal (accept) race,
the learner's confirm (the only charge) or decline, proposals lapsing, decline, cancel, expire."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from api.context import Context
from api.keys import DB
from api.models import Booking, BookingStatus, Journal, Notification, Session, SessionStatus, utcnow
from api.services import request_proposals
from api.services import requests as svc
from tests.api.market import confirm_proposal
from tests.api.test_realtime import next_of, ws_for
from tests.conftest import delivered_mail, signup


def future(hours=48):
    return (utcnow() + timedelta(hours=hours)).isoformat()


def body(**kw):
    return {
        "topic": "Async Python",
        "domain": "Programming",
        "skills": ["asyncio"],
        "duration_min": 45,
        "preferred_times": [future(24), future(48)],
        "description": "Help me with asyncio",
        **kw,
    }


async def ask(learner, **kw):
    """A request; returns (id, its preferred times as the API gave them)."""
    resp = await learner.post("/api/requests/create", json=body(**kw))
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    return data["id"], data["preferred_times"]


async def charges(client):
    async with client.app[DB].read() as s:
        return (await s.scalars(select(Journal).where(Journal.kind == "charge"))).all()


async def kinds(client, user_id):
    async with client.app[DB].read() as s:
        return [n.kind for n in (await s.scalars(select(Notification).where(Notification.user_id == user_id))).all()]


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
    # a past time among future ones is dropped: no mentor is shown a time nobody can have
    mixed = body(preferred_times=[(utcnow() - timedelta(days=3)).isoformat(), future(24)])
    resp = await learner.post("/api/requests/create", json=mixed)
    assert resp.status == 201 and len((await resp.json())["preferred_times"]) == 1
    # at most a year ahead, as a published class: a proposal confirmed there would hold the money
    far = body(preferred_times=[future(24), future(24 * 366)])
    resp = await learner.post("/api/requests/create", json=far)
    assert resp.status == 400 and "preferred_times" in (await resp.json())["error"]["fields"]


async def test_cancel_owner_only_and_only_open(client, learner, mentor):
    other = await signup(client, "learner")
    rid, times = await ask(learner, mentor_id=mentor.id)
    assert (await other.post(f"/api/requests/{rid}/cancel")).status == 404
    assert (await mentor.post(f"/api/requests/{rid}/cancel")).status == 403
    resp = await learner.post(f"/api/requests/{rid}/cancel")
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    assert (await learner.post(f"/api/requests/{rid}/cancel")).status == 409
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]})
    assert resp.status == 409


async def test_accept_only_proposes_and_charges_nothing(client, learner, mentor):
    """Issue 14: accepting with any price and a start minutes away charged the learner at once."""
    rid, times = await ask(learner, mentor_id=mentor.id)
    soon = (utcnow() + timedelta(minutes=2)).isoformat()
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": soon, "price_cents": 1_000_000})
    assert resp.status == 400 and "starts_at" in (await resp.json())["error"]["fields"]
    ws = await ws_for(learner)
    resp = await mentor.post(
        f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 1_000_000, "title": "Asyncio 1:1"}
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["session_id"] is None and data["booking_id"] is None
    req = data["request"]
    assert req["status"] == "proposed" and req["session_id"] is None
    proposal = req["proposal"]
    assert proposal["price_cents"] == 1_000_000 and proposal["title"] == "Asyncio 1:1"
    assert proposal["mentor"]["id"] == mentor.id and proposal["starts_at"] == times[0]
    assert proposal["expires_at"] <= times[0]
    note = await next_of(ws, "notification")
    assert note["data"]["kind"] == "request.proposed"
    assert await charges(client) == []
    async with client.app[DB].read() as s:
        assert (await s.scalars(select(Session))).all() == []
        assert (await s.scalars(select(Booking))).all() == []
    # The learner sees the proposal; a second proposal, or the mentor's decline, is refused.
    mine = await (await learner.get(f"/api/requests/{rid}")).json()
    assert mine["proposal"]["price_cents"] == 1_000_000
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[1]})).status == 409
    assert (await mentor.post(f"/api/requests/{rid}/decline")).status == 409
    await ws.close()


async def test_learner_confirms_proposal_booked_and_charged_once(client, learner, mentor):
    rid, times = await ask(learner, mentor_id=mentor.id)
    resp = await mentor.post(
        f"/api/requests/{rid}/accept", json={"starts_at": times[1], "price_cents": 2500, "title": "Asyncio 1:1"}
    )
    assert resp.status == 200
    other = await signup(client, "learner")
    assert (await confirm_proposal(other, rid)).status == 404
    assert (await confirm_proposal(mentor, rid)).status == 403
    # Two confirms at once (double click): one booking, one charge.
    results = await asyncio.gather(*(confirm_proposal(learner, rid) for _ in range(2)))
    assert sorted(r.status for r in results) == [200, 409]
    data = await next(r for r in results if r.status == 200).json()
    assert data["request"]["status"] == "accepted" and data["request"]["session_id"] == data["session_id"]
    async with client.app[DB].read() as s:
        sess = await s.get(Session, data["session_id"])
        booking = await s.get(Booking, data["booking_id"])
        journal = await s.scalar(select(Journal).where(Journal.booking_id == data["booking_id"]))
    assert sess.status == SessionStatus.scheduled and sess.mentor_id == mentor.id
    assert sess.title == "Asyncio 1:1" and sess.duration_min == 45 and sess.price_cents == 2500
    assert sess.starts_at == datetime.fromisoformat(times[1])
    assert sess.seats_taken == 1 and sess.capacity == 1
    assert booking.learner_id == learner.id and booking.status == BookingStatus.confirmed
    assert booking.price_cents == 2500 and booking.payment_ref
    assert journal is not None and journal.kind == "charge"
    assert len(await charges(client)) == 1
    assert "request.accepted" in await kinds(client, mentor.id)
    # The learner gets the same confirmation e-mail with a calendar invite as any booking.
    from email import message_from_bytes, policy

    mails = [
        message_from_bytes(f.read_bytes(), policy=policy.default) for f in (await delivered_mail(client)).glob("*.eml")
    ]
    confirmations = [m for m in mails if m["To"] == learner.email and "Booking confirmed" in m["Subject"]]
    assert len(confirmations) == 1
    assert any(part.get_content_type() == "text/calendar" for part in confirmations[0].iter_attachments())
    # Now decided: neither cancel nor another proposal, decline or confirm.
    assert (await learner.post(f"/api/requests/{rid}/cancel")).status == 409
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]})).status == 409
    assert (await mentor.post(f"/api/requests/{rid}/decline")).status == 409
    resp = await learner.post(f"/api/requests/{rid}/proposal/decline")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "no_proposal"


async def test_learner_declines_proposal_nothing_charged_request_reopens(client, learner, mentor):
    rid, times = await ask(learner, mentor_id=mentor.id)
    assert (await confirm_proposal(learner, rid)).status == 409  # nothing proposed
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 9000})
    resp = await learner.post(f"/api/requests/{rid}/proposal/decline")
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["status"] == "open" and out["proposal"] is None and out["decided_by_id"] is None
    assert "request.proposal_declined" in await kinds(client, mentor.id)
    assert await charges(client) == []
    resp = await confirm_proposal(learner, rid)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "no_proposal"
    # The mentor may propose again (another time or price), and the learner confirm that one.
    assert (
        await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[1], "price_cents": 4000})
    ).status == 200
    assert (await confirm_proposal(learner, rid)).status == 200
    assert [j.kind for j in await charges(client)] == ["charge"]


async def test_unconfirmed_proposal_lapses_and_cannot_be_confirmed(client, learner, mentor):
    rid, times = await ask(learner, mentor_id=mentor.id)
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[1], "price_cents": 3000})
    ctx = Context.of(client.app)
    assert await request_proposals.expire_due(ctx, now=utcnow()) == []
    proposal = (await (await learner.get(f"/api/requests/{rid}")).json())["proposal"]
    # The proposal lapses by its deadline (the ttl, at the latest its start).
    assert await request_proposals.expire_due(ctx, now=utcnow() + timedelta(hours=49)) == [rid]
    assert proposal["expires_at"] <= (utcnow() + timedelta(hours=49)).isoformat()
    got = await (await learner.get(f"/api/requests/{rid}")).json()
    assert got["status"] == "open" and got["proposal"] is None
    assert "request.proposal_expired" in await kinds(client, learner.id)
    assert "request.proposal_expired" in await kinds(client, mentor.id)
    assert (await confirm_proposal(learner, rid)).status == 409
    assert await charges(client) == []


async def test_confirm_after_the_deadline_is_refused_even_before_the_scheduler_runs(client, learner, mentor):
    from sqlalchemy import update

    from api.models import Request

    rid, times = await ask(learner, mentor_id=mentor.id)
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 3000})
    async with client.app[DB].write() as s:
        await s.execute(
            update(Request).where(Request.id == rid).values(proposal_expires_at=utcnow() - timedelta(seconds=1))
        )
    resp = await confirm_proposal(learner, rid)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "proposal_expired"
    assert await charges(client) == []


async def test_accept_refusals(client, learner, mentor):
    other_mentor = await signup(client, "mentor", domains=["Programming"])
    rid, times = await ask(learner, mentor_id=mentor.id)
    assert (await other_mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]})).status == 404
    assert (await learner.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]})).status == 403
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": past})).status == 400
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": future(30)})).status == 400
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": future(24 * 366)})
    assert resp.status == 400 and "starts_at" in (await resp.json())["error"]["fields"]
    assert (await mentor.post(f"/api/requests/{rid}/accept", json={})).status == 400
    assert (await mentor.post("/api/requests/999999/accept", json={"starts_at": future()})).status == 404


async def test_two_mentors_accepting_at_once_exactly_one_wins(client, learner, mentor):
    rivals = [mentor] + [await signup(client, "mentor", domains=["Programming"]) for _ in range(3)]
    for _ in range(3):
        rid, times = await ask(learner)
        results = await asyncio.gather(
            *(m.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0]}) for m in rivals)
        )
        statuses = sorted(r.status for r in results)
        assert statuses == [200, 409, 409, 409], statuses
        winners = [m for m, r in zip(rivals, results) if r.status == 200]
        got = await (await learner.get(f"/api/requests/{rid}")).json()
        assert got["status"] == "proposed" and got["proposal"]["mentor"]["id"] == winners[0].id
        loser = next(m for m in rivals if m is not winners[0])
        seen = await (await loser.get(f"/api/requests/{rid}")).json()
        assert seen["status"] == "proposed" and seen["proposal"] is None
        assert (await confirm_proposal(learner, rid)).status == 200
    async with client.app[DB].read() as s:
        sessions = (await s.scalars(select(Session).where(Session.title == "Async Python"))).all()
        bookings = (await s.scalars(select(Booking).where(Booking.learner_id == learner.id))).all()
    assert len(sessions) == len(bookings) == 3


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
    """Open requests expire; so does one whose proposal lapsed after its times passed."""
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
