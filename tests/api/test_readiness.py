"""Readiness: window T–10 min .. end, participants only, broadcasts and notifications."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api.keys import DB
from api.models import BookingStatus, Notification, SessionStatus
from tests.api.helpers_marketplace import book, make_session
from tests.api.test_realtime import next_of, ws_for
from tests.conftest import signup


async def notes_of(client, user_id):
    async with client.app[DB].read() as s:
        return [
            (n.kind, n.title, n.link)
            for n in (await s.scalars(select(Notification).where(Notification.user_id == user_id))).all()
        ]


async def test_mentor_ready_notifies_learners_and_broadcasts(client, learner, mentor):
    sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=5))
    await book(client, sid, learner.id)
    ws = await ws_for(learner)
    await ws.send_json({"type": "subscribe", "session_id": sid})
    assert (await next_of(ws, "subscribed"))["type"] == "subscribed"
    resp = await mentor.post(f"/api/rooms/{sid}/ready", json={"ready": True})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"session_id": sid, "user_id": mentor.id, "role": "mentor", "ready": True}
    msg = await next_of(ws, "ready")
    assert msg["data"] == {"session_id": sid, "user_id": mentor.id, "role": "mentor", "ready": True}
    assert (await next_of(ws, "notification"))["data"]["title"] == "Mentor is ready"
    assert await notes_of(client, learner.id) == [("mentor.ready", "Mentor is ready", f"/room/{sid}")]
    # Saying it again changes nothing and notifies nobody twice.
    assert (await mentor.post(f"/api/rooms/{sid}/ready", json={"ready": True})).status == 200
    assert len(await notes_of(client, learner.id)) == 1
    await ws.close()


async def test_learner_ready_notifies_mentor(client, learner, mentor):
    sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=-20))
    await book(client, sid, learner.id)
    resp = await learner.post(f"/api/rooms/{sid}/ready", json={"ready": True})
    assert resp.status == 200 and (await resp.json())["role"] == "learner"
    assert await notes_of(client, mentor.id) == [("learner.joined", "Learner has joined", f"/room/{sid}")]
    status = await (await mentor.get(f"/api/rooms/{sid}/ready")).json()
    assert status["mentor"]["ready"] is False
    assert [(p["user_id"], p["ready"]) for p in status["learners"]] == [(learner.id, True)]
    assert status["learners_ready"] == 1 and status["learners_total"] == 1
    resp = await learner.post(f"/api/rooms/{sid}/ready", json={"ready": False})
    assert resp.status == 200
    status = await (await learner.get(f"/api/rooms/{sid}/ready")).json()
    assert status["learners_ready"] == 0


async def test_window_too_early_and_too_late(client, learner, mentor):
    early = await make_session(client, mentor.id, starts_in=timedelta(minutes=11))
    resp = await mentor.post(f"/api/rooms/{early}/ready", json={"ready": True})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "too_early"
    over = await make_session(client, mentor.id, starts_in=timedelta(hours=-3), duration_min=60)
    resp = await mentor.post(f"/api/rooms/{over}/ready", json={"ready": True})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "too_late"
    done = await make_session(client, mentor.id, starts_in=timedelta(minutes=-5), status=SessionStatus.completed)
    resp = await mentor.post(f"/api/rooms/{done}/ready", json={"ready": True})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "too_late"


async def test_only_participants(client, learner, mentor, admin):
    other_learner = await signup(client, "learner")
    cancelled_learner = await signup(client, "learner")
    other_mentor = await signup(client, "mentor")
    sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=1))
    await book(client, sid, learner.id)
    await book(client, sid, cancelled_learner.id, BookingStatus.cancelled)
    for who in (other_learner, cancelled_learner, other_mentor, admin):
        assert (await who.post(f"/api/rooms/{sid}/ready", json={"ready": True})).status == 403
    for who in (other_learner, other_mentor):
        assert (await who.get(f"/api/rooms/{sid}/ready")).status == 403
    assert (await admin.get(f"/api/rooms/{sid}/ready")).status == 200
    assert (await client.post(f"/api/rooms/{sid}/ready", json={"ready": True})).status == 401
    draft = await make_session(client, mentor.id, starts_in=timedelta(minutes=1), status=SessionStatus.draft)
    assert (await learner.post(f"/api/rooms/{draft}/ready", json={"ready": True})).status == 404
    assert (await learner.post("/api/rooms/999999/ready", json={"ready": True})).status == 404
    assert (await learner.post(f"/api/rooms/{sid}/ready", json={"ready": "yes please"})).status == 400
