"""Mentor analytics: own numbers only; followers, weekly enrollments, ratings, revenue, talk time."""

from __future__ import annotations

from datetime import timedelta

from api.context import Context
from api.keys import DB
from api.models import Feedback, Follow, Session, SessionStatus, utcnow
from api.services import rooms, scheduler
from tests.api.market import confirm_proposal
from tests.api.classes import in_room
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import signup


async def test_numbers(client, learner, mentor, settings):
    other = await signup(client, "learner")
    async with client.app[DB].write() as s:
        s.add_all(
            [Follow(learner_id=learner.id, mentor_id=mentor.id), Follow(learner_id=other.id, mentor_id=mentor.id)]
        )
    past = await make_session(
        client,
        mentor.id,
        starts_in=timedelta(hours=-(2 + settings.room_grace_minutes / 60)),
        duration_min=30,
        title="Done",
    )
    await book(client, past, learner.id)
    await book(client, past, other.id)
    # The class took place (the SFU saw the mentor and one learner; the other is a no-show).
    async with client.app[DB].write() as s:
        start = (await s.get(Session, past)).starts_at
        (await s.get(Session, past)).status = SessionStatus.live
    await in_room(client, past, mentor.id, "mentor", start, start + timedelta(minutes=30))
    await in_room(client, past, learner.id, "learner", start, start + timedelta(minutes=30))
    await scheduler.run_once(Context.of(client.app))
    async with client.app[DB].write() as s:
        assert (await s.get(Session, past)).status == SessionStatus.completed
        s.add_all(
            [
                Feedback(session_id=past, author_id=learner.id, rating=5, comment=""),
                Feedback(session_id=past, author_id=other.id, rating=2, comment="", hidden=True),
            ]
        )
    async with client.app[DB].write() as s:  # what the SFU reports (rooms.save_talk_time)
        (await s.get(Session, past)).talk_time = {str(mentor.id): 600.0, str(learner.id): 200.0}
    # A priced request the learner confirmed gives revenue (pending until the session completes).
    when = (utcnow() + timedelta(days=2)).isoformat()
    rid = (
        await (
            await learner.post(
                "/api/requests/create",
                json={"topic": "Paid", "domain": "Programming", "mentor_id": mentor.id, "preferred_times": [when]},
            )
        ).json()
    )["id"]
    assert (
        await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": when, "price_cents": 10000})
    ).status == 200
    assert (await confirm_proposal(learner, rid)).status == 200

    resp = await mentor.get("/api/mentor/analytics?weeks=4")
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["followers"] == 2 and data["learners"] == 2
    assert data["enrollments_total"] == 3
    assert len(data["enrollments_weekly"]) == 4 and data["enrollments_weekly"][-1]["enrollments"] == 3
    assert data["completed_sessions"] == 1 and data["sessions"]["scheduled"] == 1
    assert data["rating"] == {"average": 5.0, "count": 1, "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert data["revenue"]["gross_bookings_cents"] == 10000
    assert data["revenue"]["pending_cents"] == 8500 and data["revenue"]["available_cents"] == 0
    assert data["talk_time"]["mentor_seconds"] == 600 and data["talk_time"]["learners_seconds"] == 200
    assert data["talk_time"]["mentor_share"] == 0.75
    assert data["connection"]["sessions"] == []  # no scores from the SFU yet

    # The SFU scored the connections (rooms.save_connection_quality, twice: the room
    # closed and opened again): one learner was on a poor link for four minutes.
    ctx = Context.of(client.app)
    await rooms.save_connection_quality(
        ctx, past, {mentor.id: {"excellent": 1500.0}, learner.id: {"good": 1000.0, "poor": 120.0}}
    )
    await rooms.save_connection_quality(
        ctx, past, {learner.id: {"poor": 100.0, "lost": 20.0}, other.id: {"excellent": 30.0, "poor": 10.0}}
    )
    data = await (await mentor.get("/api/mentor/analytics?weeks=4")).json()
    assert data["connection"]["sessions"] == [
        {
            "session_id": past,
            "title": "Done",
            "learners": 2,
            "poor_learners": 1,
            "poor_seconds": 240.0,
            "mentor_poor_seconds": 0.0,
        }
    ]


async def test_refusals(client, learner, mentor, admin):
    other_mentor = await signup(client, "mentor")
    assert (await client.get("/api/mentor/analytics")).status == 401
    assert (await learner.get("/api/mentor/analytics")).status == 403
    assert (await other_mentor.get(f"/api/mentor/analytics?mentor_id={mentor.id}")).status == 403
    assert (await admin.get("/api/mentor/analytics")).status == 400
    assert (await admin.get(f"/api/mentor/analytics?mentor_id={learner.id}")).status == 404
    resp = await admin.get(f"/api/mentor/analytics?mentor_id={mentor.id}")
    assert resp.status == 200 and (await resp.json())["mentor_id"] == mentor.id
    empty = await (await other_mentor.get("/api/mentor/analytics")).json()
    assert empty["followers"] == 0 and empty["rating"]["average"] is None
    assert empty["talk_time"]["mentor_share"] is None
