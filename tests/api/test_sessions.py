"""Sessions: drafts, edits, publish, cancel, browse, detail, reviews, mentor list; the state machine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api.context import Context
from api.models import SessionStatus
from api.services import catalog, session_state
from tests.api.classes import take_place
from tests.api.market import book, draft, future, published, quick_users, set_platform, shift_start
from tests.conftest import signup


async def test_create_draft_stores_utc_from_offset_and_from_zone_name(mentor):
    d = await draft(mentor, starts_at="2031-06-01T10:00:00+02:00")
    assert d["status"] == "draft"
    assert d["starts_at"].startswith("2031-06-01T08:00:00")
    assert d["curriculum"] == ["Fixtures", "Mocks"]
    assert d["seats_left"] == 5 and d["is_owner"] is True
    d2 = await draft(mentor, starts_at="2031-01-15T09:30:00", timezone="America/New_York")
    assert d2["starts_at"].startswith("2031-01-15T14:30:00")
    resp = await mentor.post(
        "/api/sessions",
        json={"title": "x", "domain": "d", "starts_at": "2031-01-15T09:30:00", "timezone": "Mars/Olympus"},
    )
    assert resp.status == 400
    assert "timezone" in (await resp.json())["error"]["fields"]


async def test_create_refusals(client, learner, mentor, admin):
    body = {"title": "t", "domain": "d", "starts_at": future()}
    assert (await client.post("/api/sessions", json=body)).status == 401
    assert (await learner.post("/api/sessions", json=body)).status == 403
    assert (await admin.post("/api/sessions", json=body)).status == 403
    for bad in (
        {"title": "", "domain": "d", "starts_at": future()},
        {"title": "t", "domain": "d", "starts_at": future(), "price_cents": -1},
        {"title": "t", "domain": "d", "starts_at": future(), "capacity": 0},
        {"title": "t", "domain": "d", "starts_at": "yesterday"},
        {"title": "t", "domain": "d", "starts_at": future(), "status": "scheduled"},
        {"title": "t", "domain": "d", "starts_at": future(), "currency": "EURO"},
    ):
        resp = await mentor.post("/api/sessions", json=bad)
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "validation_error"
    resp = await mentor.post("/api/sessions", json={**body, "capacity": 500})
    assert resp.status == 400


async def test_drafts_are_private_to_mentor_and_admins(client, learner, mentor, admin):
    d = await draft(mentor)
    other = await signup(client, "mentor")
    assert (await mentor.get(f"/api/sessions/{d['id']}")).status == 200
    assert (await admin.get(f"/api/sessions/{d['id']}")).status == 200
    for who in (learner, other):
        assert (await who.get(f"/api/sessions/{d['id']}")).status == 404
        assert (await who.get(f"/api/sessions/{d['id']}/reviews")).status == 404
    assert (await client.get(f"/api/sessions/{d['id']}")).status == 404
    assert (await other.post(f"/api/sessions/{d['id']}/update", json={"title": "mine"})).status == 404
    assert (await other.post(f"/api/sessions/{d['id']}/publish")).status == 404
    assert (await other.post(f"/api/sessions/{d['id']}/cancel")).status == 404
    assert (await learner.post(f"/api/sessions/{d['id']}/publish")).status == 403
    assert (await client.post(f"/api/sessions/{d['id']}/publish")).status == 401
    assert (await client.get("/api/sessions/abc")).status == 404
    assert (await client.get("/api/sessions/999999")).status == 404
    listing = await (await client.get("/api/sessions")).json()
    assert d["id"] not in [i["id"] for i in listing["items"]]


async def test_update_rules(client, learner, mentor):
    d = await draft(mentor)
    resp = await mentor.post(
        f"/api/sessions/{d['id']}/update", json={"title": "Renamed", "capacity": 3, "skills": ["Go", "go"]}
    )
    assert resp.status == 200
    data = await resp.json()
    assert data["title"] == "Renamed" and data["capacity"] == 3 and data["skills"] == ["Go"]
    assert (await mentor.post(f"/api/sessions/{d['id']}/update", json={"bogus": 1})).status == 400
    other = await signup(client, "mentor")
    pub = await published(mentor, capacity=3)
    assert (await other.post(f"/api/sessions/{pub['id']}/update", json={"title": "x"})).status == 403
    assert (await book(learner, pub["id"])).status == 201
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"price_cents": 100})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "seats_taken"
    l2 = (await quick_users(client, 1))[0]
    assert (await book(l2, pub["id"])).status == 201
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"capacity": 1})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "capacity_below_seats"
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"capacity": 2})
    assert resp.status == 200 and (await resp.json())["seats_left"] == 0
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert (await mentor.post(f"/api/sessions/{pub['id']}/update", json={"starts_at": past})).status == 400
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"starts_at": future(72)})
    assert resp.status == 200
    notes = await (await learner.get("/api/notifications")).json()
    kinds = [n["kind"] for n in (notes["items"] if isinstance(notes, dict) else notes)]
    assert "session.updated" in kinds


async def test_publish_rules(client, mentor):
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    d = await draft(mentor, starts_at=past)
    resp = await mentor.post(f"/api/sessions/{d['id']}/publish")
    assert resp.status == 400 and "starts_at" in (await resp.json())["error"]["fields"]
    d = await draft(mentor, capacity=10)
    await set_platform(client, max_capacity=5)
    resp = await mentor.post(f"/api/sessions/{d['id']}/publish")
    assert resp.status == 400 and "capacity" in (await resp.json())["error"]["fields"]
    await set_platform(client, max_capacity=20)
    resp = await mentor.post(f"/api/sessions/{d['id']}/publish")
    assert resp.status == 200 and (await resp.json())["status"] == "scheduled"
    resp = await mentor.post(f"/api/sessions/{d['id']}/publish")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "invalid_status"
    # sold at most a year ahead: a learner's money is not held for decades
    far = (datetime.now(timezone.utc) + timedelta(days=20 * 365)).isoformat()
    d = await draft(mentor, starts_at=far)
    resp = await mentor.post(f"/api/sessions/{d['id']}/publish")
    assert resp.status == 400 and "starts_at" in (await resp.json())["error"]["fields"]
    assert (await (await mentor.get(f"/api/sessions/{d['id']}")).json())["status"] == "draft"
    pub = await published(mentor)
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"starts_at": far})
    assert resp.status == 400 and "starts_at" in (await resp.json())["error"]["fields"]


async def test_cancel_refunds_every_booking_and_notifies(client, mentor, admin):
    pub = await published(mentor, price_cents=3000, capacity=4)
    learners = await quick_users(client, 3)
    for lr in learners:
        assert (await book(lr, pub["id"])).status == 201
    resp = await mentor.post(f"/api/sessions/{pub['id']}/cancel", json={"reason": "I am ill"})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["refunded_bookings"] == 3 and data["refunded_cents"] == 9000
    assert data["session"]["status"] == "cancelled" and data["session"]["seats_taken"] == 0
    for lr in learners:
        notes = await (await lr.get("/api/notifications")).json()
        items = notes["items"] if isinstance(notes, dict) else notes
        assert any(n["kind"] == "session.cancelled" for n in items)
        bookings = await (await lr.get("/api/bookings")).json()
        assert [b["status"] for b in bookings["items"]] == ["cancelled"]
    earnings = await (await mentor.get("/api/earnings")).json()
    assert earnings["pending_cents"] == 0 and earnings["available_cents"] == 0
    assert (await mentor.post(f"/api/sessions/{pub['id']}/cancel")).status == 409
    # an admin may cancel anyone's session; another mentor may not
    pub2 = await published(mentor)
    other = await signup(client, "mentor")
    assert (await other.post(f"/api/sessions/{pub2['id']}/cancel")).status == 403
    assert (await learners[0].post(f"/api/sessions/{pub2['id']}/cancel")).status == 403
    assert (await admin.post(f"/api/sessions/{pub2['id']}/cancel")).status == 200


async def test_browse_filters_sort_pagination(client, mentor):
    other = await signup(client, "mentor", full_name="Grace Hopper")
    a = await published(
        mentor, title="Async Python", price_cents=1000, domain="Programming", starts_at=future(24), skills=["asyncio"]
    )
    b = await published(
        other,
        title="Figma basics",
        price_cents=5000,
        domain="Design",
        starts_at=future(24 * 5),
        description="Frames and components",
    )
    c = await published(other, title="Free chat", price_cents=0, domain="Design", starts_at=future(24 * 10), capacity=2)
    await draft(mentor, title="Hidden draft")

    async def ids(qs: str) -> list[int]:
        resp = await client.get("/api/sessions" + qs)
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        assert all("seats_left" in i and "mentor" in i for i in data["items"])
        return [i["id"] for i in data["items"]]

    assert await ids("") == [a["id"], b["id"], c["id"]]
    assert await ids("?domain=design") == [b["id"], c["id"]]
    assert await ids("?min_price=1000&max_price=4000") == [a["id"]]
    assert await ids("?sort=-price") == [b["id"], a["id"], c["id"]]
    assert await ids("?sort=price") == [c["id"], a["id"], b["id"]]
    assert await ids("?q=grace") == [b["id"], c["id"]]
    assert await ids("?q=ASYNCIO") == [a["id"]]
    assert await ids("?q=components") == [b["id"]]
    assert await ids("?q=100%25") == []
    assert await ids(f"?mentor_id={mentor.id}") == [a["id"]]
    day = (datetime.now(timezone.utc) + timedelta(days=5)).date().isoformat()
    assert await ids(f"?date_from={day}&date_to={day}") == [b["id"]]
    assert await ids("?page_size=2&page=2") == [c["id"]]
    assert await ids("?domain=&q=") == [a["id"], b["id"], c["id"]]
    l1 = (await quick_users(client, 1))[0]
    await book(l1, c["id"])
    assert (await ids("?sort=popularity"))[0] == c["id"]
    for bad in ("?page_size=101", "?page=0", "?min_price=-1", "?sort=random", "?date_from=nope"):
        assert (await client.get("/api/sessions" + bad)).status == 400, bad
    page = await (await client.get("/api/sessions?page_size=1")).json()
    assert page["total"] == 3 and page["page_size"] == 1


async def test_detail_shows_booking_and_rating(client, learner, mentor):
    pub = await published(mentor)
    resp = await client.get(f"/api/sessions/{pub['id']}")
    data = await resp.json()
    assert data["booked"] is False and data["rating"] == {"average": None, "count": 0}
    booking = await (await book(learner, pub["id"])).json()
    data = await (await learner.get(f"/api/sessions/{pub['id']}")).json()
    assert data["booked"] is True and data["booking_id"] == booking["id"] and data["seats_left"] == 4
    reviews = await (await client.get(f"/api/sessions/{pub['id']}/reviews")).json()
    assert reviews["items"] == [] and reviews["total"] == 0


async def test_mentor_sessions_list(client, mentor, learner):
    d = await draft(mentor)
    p = await published(mentor)
    data = await (await mentor.get("/api/mentor/sessions")).json()
    assert {i["id"] for i in data["items"]} == {d["id"], p["id"]}
    data = await (await mentor.get("/api/mentor/sessions?status=draft")).json()
    assert [i["id"] for i in data["items"]] == [d["id"]]
    assert (await mentor.get("/api/mentor/sessions?status=bogus")).status == 400
    assert (await learner.get("/api/mentor/sessions")).status == 403
    assert (await client.get("/api/mentor/sessions")).status == 401


def test_state_machine_table():
    S = SessionStatus
    assert session_state.can_transition(S.draft, S.scheduled)
    assert session_state.can_transition(S.scheduled, S.live)
    assert session_state.can_transition(S.live, S.completed)
    assert not session_state.can_transition(S.draft, S.live)
    assert not session_state.can_transition(S.completed, S.cancelled)
    assert not session_state.can_transition(S.cancelled, S.scheduled)
    assert not session_state.can_transition(S.live, S.scheduled)


async def test_lifecycle_through_services(client, mentor):
    ctx = Context.of(client.app)
    pub = await published(mentor)
    sess = await catalog.start_session(ctx, pub["id"])
    assert sess.status == SessionStatus.live and sess.started_at is not None
    with pytest.raises(session_state.InvalidTransition):
        await catalog.start_session(ctx, pub["id"])
    sess = (await take_place(client, pub["id"])).session  # the mentor was in the room: it took place
    assert sess.status == SessionStatus.completed and sess.ended_at is not None
    with pytest.raises(session_state.InvalidTransition):
        await catalog.complete_session(ctx, pub["id"])
    resp = await mentor.post(f"/api/sessions/{pub['id']}/cancel")
    assert resp.status == 409
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"title": "late"})
    assert resp.status == 409


async def test_past_scheduled_session_publish_guard(client, mentor):
    pub = await published(mentor)
    await shift_start(client, pub["id"], datetime.now(timezone.utc) - timedelta(minutes=5))
    data = await (await client.get(f"/api/sessions/{pub['id']}")).json()
    assert data["status"] == "scheduled"
