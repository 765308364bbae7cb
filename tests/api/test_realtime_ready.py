"""Issue 14: /ws subscribers see a session's readiness by the rule of GET /api/rooms/{id}/ready:
the mentor and admins everything, a booked learner the mentor and themself (other learners
anonymised), anyone else nothing."""

from __future__ import annotations

from datetime import timedelta

from api.keys import HUB
from api.realtime import ReadyView, visible_ready
from api.services.notifications import session_channel
from tests.api.helpers_marketplace import book, make_session
from tests.api.test_realtime import next_of, ws_for
from tests.conftest import make_admin, signup


async def subscribed(user, sid):
    ws = await ws_for(user)
    await ws.send_json({"type": "subscribe", "session_id": sid})
    assert (await next_of(ws, "subscribed"))["data"]["session_id"] == sid
    return ws


def test_visible_ready_rule() -> None:
    mine = {"session_id": 1, "user_id": 7, "role": "learner", "ready": True}
    other = {**mine, "user_id": 8}
    mentor = {**mine, "user_id": 2, "role": "mentor"}
    assert visible_ready(ReadyView.everyone, 2, other) == other
    assert visible_ready(ReadyView.own, 7, mine) == mine and visible_ready(ReadyView.own, 7, mentor) == mentor
    assert visible_ready(ReadyView.own, 7, other) == {**other, "user_id": None}
    assert all(visible_ready(ReadyView.nothing, 7, d) is None for d in (mine, other, mentor))


async def test_ready_messages_follow_the_ready_endpoint_rule(client, mentor, learner):
    sid = await make_session(client, mentor.id, starts_in=timedelta(minutes=5))
    other = await signup(client, "learner")
    stranger = await signup(client, "learner")
    admin = await make_admin(client)
    await book(client, sid, learner.id)
    await book(client, sid, other.id)
    sockets = {
        who: await subscribed(user, sid)
        for who, user in (
            ("mentor", mentor),
            ("learner", learner),
            ("other", other),
            ("stranger", stranger),
            ("admin", admin),
        )
    }
    # The stranger may follow the public session (seats, updates) but not see who is ready.
    assert (await (await stranger.get(f"/api/rooms/{sid}/ready")).json())["error"]["code"] == "forbidden"

    assert (await learner.post(f"/api/rooms/{sid}/ready", json={"ready": True})).status == 200
    for who in ("mentor", "admin", "learner"):
        assert (await next_of(sockets[who], "ready"))["data"]["user_id"] == learner.id, who
    anonymous = await next_of(sockets["other"], "ready")
    assert anonymous["data"]["user_id"] is None and anonymous["data"]["ready"] is True

    assert (await mentor.post(f"/api/rooms/{sid}/ready", json={"ready": True})).status == 200
    for who in ("learner", "other", "admin"):
        assert (await next_of(sockets[who], "ready"))["data"]["user_id"] == mentor.id, who
    # The stranger got neither: everything before a later public message is checked.
    await client.app[HUB].publish(session_channel(sid), "seats", {"session_id": sid, "seats_left": 1})
    seen = []
    while not seen or seen[-1] != "seats":
        seen.append((await sockets["stranger"].receive_json(timeout=5))["type"])
    assert "ready" not in seen, seen
    for ws in sockets.values():
        await ws.close()


async def test_deeply_nested_frame_is_an_error_reply(client, learner):
    ws = await ws_for(learner)
    await ws.send_str("[" * 60_000)
    assert (await next_of(ws, "error"))["data"]["code"] == "malformed"
    await ws.send_json({"type": "ping"})
    assert (await next_of(ws, "pong"))["type"] == "pong"  # the socket stays up
    await ws.close()
