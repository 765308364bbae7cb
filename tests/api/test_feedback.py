"""Feedback on completed sessions, aggregates, mentor profiles, follows."""

from __future__ import annotations

import asyncio

from tests.api.classes import take_place
from tests.api.market import book, published, quick_users
from tests.conftest import signup


async def _completed_with(client, mentor, learners, **fields):
    pub = await published(mentor, **fields)
    for lr in learners:
        assert (await book(lr, pub["id"])).status == 201
    await take_place(client, pub["id"], [lr.id for lr in learners])
    return pub


async def test_feedback_flow_and_aggregates(client, mentor):
    learners = await quick_users(client, 3)
    pub = await _completed_with(client, mentor, learners)
    for lr, rating in zip(learners[:2], (5, 4)):
        resp = await lr.post(
            "/api/feedback/create", json={"session_id": pub["id"], "rating": rating, "comment": "Great"}
        )
        assert resp.status == 201, await resp.text()
    resp = await learners[0].post("/api/feedback/create", json={"session_id": pub["id"], "rating": 1})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_reviewed"
    detail = await (await client.get(f"/api/sessions/{pub['id']}")).json()
    assert detail["rating"] == {"average": 4.5, "count": 2}
    assert detail["mentor"]["rating"] == {"average": 4.5, "count": 2}
    reviews = await (await client.get(f"/api/sessions/{pub['id']}/reviews")).json()
    assert [r["rating"] for r in reviews["items"]] == [4, 5] and reviews["rating"]["count"] == 2
    profile = await (await client.get(f"/api/mentors/{mentor.id}")).json()
    assert profile["rating"] == {"average": 4.5, "count": 2} and profile["completed_sessions"] == 1
    notes = await (await mentor.get("/api/notifications")).json()
    items = notes["items"] if isinstance(notes, dict) else notes
    assert sum(n["kind"] == "feedback.received" for n in items) == 2


async def test_feedback_refusals(client, mentor, learner, admin):
    outsider = (await quick_users(client, 1))[0]
    pub = await _completed_with(client, mentor, [learner])
    body = {"session_id": pub["id"], "rating": 5}
    assert (await client.post("/api/feedback/create", json=body)).status == 401
    assert (await mentor.post("/api/feedback/create", json=body)).status == 403
    assert (await admin.post("/api/feedback/create", json=body)).status == 403
    resp = await outsider.post("/api/feedback/create", json=body)
    assert resp.status == 403
    for bad in (
        {"session_id": pub["id"], "rating": 0},
        {"session_id": pub["id"], "rating": 6},
        {"session_id": pub["id"], "rating": 5, "comment": "x" * 2001},
        {"rating": 5},
        {"session_id": pub["id"], "rating": 5, "author_id": 1},
    ):
        assert (await learner.post("/api/feedback/create", json=bad)).status == 400, bad
    assert (await learner.post("/api/feedback/create", json={"session_id": 999999, "rating": 5})).status == 404
    upcoming = await published(mentor)
    await book(learner, upcoming["id"])
    resp = await learner.post("/api/feedback/create", json={"session_id": upcoming["id"], "rating": 5})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_not_completed"
    assert (
        await learner.post("/api/feedback/create", json={"session_id": pub["id"], "rating": 5, "comment": "x" * 2000})
    ).status == 201


async def test_cancelled_booking_cannot_review(client, mentor):
    lr = (await quick_users(client, 1))[0]
    pub = await published(mentor)
    b = await (await book(lr, pub["id"])).json()
    await lr.post(f"/api/bookings/{b['id']}/cancel")
    await take_place(client, pub["id"])  # the mentor held it, alone
    resp = await lr.post("/api/feedback/create", json={"session_id": pub["id"], "rating": 3})
    assert resp.status == 403


async def test_mentor_profile_and_follow(client, mentor, learner):
    pub = await published(mentor)
    profile = await (await client.get(f"/api/mentors/{mentor.id}")).json()
    assert profile["followers"] == 0 and profile["following"] is False
    assert [s["id"] for s in profile["upcoming"]] == [pub["id"]]
    assert "email" not in profile
    resp = await learner.post(f"/api/mentors/{mentor.id}/follow")
    assert resp.status == 200 and await resp.json() == {"mentor_id": mentor.id, "following": True, "followers": 1}
    assert (await (await learner.post(f"/api/mentors/{mentor.id}/follow")).json())["followers"] == 1
    profile = await (await learner.get(f"/api/mentors/{mentor.id}")).json()
    assert profile["following"] is True and profile["followers"] == 1
    resp = await learner.delete(f"/api/mentors/{mentor.id}/follow")
    assert (await resp.json()) == {"mentor_id": mentor.id, "following": False, "followers": 0}
    assert (await learner.delete(f"/api/mentors/{mentor.id}/follow")).status == 200
    # refusals
    assert (await client.post(f"/api/mentors/{mentor.id}/follow")).status == 401
    other = await signup(client, "mentor")
    assert (await other.post(f"/api/mentors/{mentor.id}/follow")).status == 403
    assert (await learner.post(f"/api/mentors/{learner.id}/follow")).status == 404
    assert (await learner.post("/api/mentors/999999/follow")).status == 404
    assert (await client.get(f"/api/mentors/{learner.id}")).status == 404
    assert (await client.get("/api/mentors/nope")).status == 404


async def test_concurrent_follow_is_single(client, mentor, learner):
    responses = await asyncio.gather(*(learner.post(f"/api/mentors/{mentor.id}/follow") for _ in range(10)))
    assert {r.status for r in responses} == {200}
    profile = await (await client.get(f"/api/mentors/{mentor.id}")).json()
    assert profile["followers"] == 1
