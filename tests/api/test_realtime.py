"""The /ws realtime hub: auth, origin, per-user delivery, session subscriptions, limits, logout."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import WSMsgType

from api.keys import BROKER, DB, HUB
from api.models import Session, SessionStatus, utcnow
from api.services import notifications
from tests.conftest import PASSWORD

TIMEOUT = 5


async def ws_for(user):
    ws = await user.client.ws_connect(f"/ws?token={user.token}")
    hello = await ws.receive_json(timeout=TIMEOUT)
    assert hello["type"] == "hello" and hello["data"]["user_id"] == user.id
    return ws


async def next_of(ws, kind):
    """The next message of this type (skipping pings and others), or fail after TIMEOUT."""

    async def loop():
        while True:
            msg = await ws.receive()
            if msg.type != WSMsgType.TEXT:
                return {"type": "_closed", "code": ws.close_code, "msg": msg.type}
            data = json.loads(msg.data)
            if data["type"] == kind or data["type"] == "error":
                return data

    return await asyncio.wait_for(loop(), TIMEOUT)


async def make_session(client, mentor_id, status=SessionStatus.scheduled):
    async with client.app[DB].write() as s:
        row = Session(
            mentor_id=mentor_id,
            title="Realtime",
            domain="Programming",
            capacity=3,
            starts_at=utcnow() + timedelta(days=1),
            duration_min=60,
            status=status,
        )
        s.add(row)
        await s.flush()
        return row.id


async def test_refused_without_token(client):
    resp = await client.get(
        "/ws",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await client.ws_connect("/ws?token=not-a-token")
    assert exc.value.status == 401


async def test_cookie_auth_same_origin_ok_cross_origin_refused(client, learner):
    resp = await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    assert resp.status == 200
    origin = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/ws", headers={"Origin": origin})
    assert (await ws.receive_json(timeout=TIMEOUT))["type"] == "hello"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert exc.value.status == 403


async def test_notification_reaches_only_its_user(client, learner, mentor):
    ws_l = await ws_for(learner)
    ws_m = await ws_for(mentor)
    await notifications.notify(client.app[DB], client.app[BROKER], learner.id, "account", "For you")
    msg = await next_of(ws_l, "notification")
    assert msg["data"]["title"] == "For you"
    # The mentor's socket gets nothing but its own: send a marker through its own channel.
    await notifications.notify(client.app[DB], client.app[BROKER], mentor.id, "account", "Marker")
    msg = await next_of(ws_m, "notification")
    assert msg["data"]["title"] == "Marker"
    await ws_l.close()
    await ws_m.close()


async def test_subscribe_rules(client, learner, mentor):
    other_mentor_ws = await ws_for(mentor)
    draft = await make_session(client, mentor.id, SessionStatus.draft)
    public = await make_session(client, mentor.id)
    ws = await ws_for(learner)
    await ws.send_json({"type": "subscribe", "session_id": draft})
    msg = await next_of(ws, "subscribed")
    assert msg["type"] == "error" and msg["data"]["code"] == "forbidden"
    await ws.send_json({"type": "subscribe", "session_id": 999999})
    assert (await next_of(ws, "subscribed"))["type"] == "error"
    await ws.send_json({"type": "subscribe", "session_id": public})
    assert (await next_of(ws, "subscribed"))["data"]["session_id"] == public
    await client.app[HUB].publish(f"session:{public}", "seats", {"session_id": public, "seats_left": 2})
    msg = await next_of(ws, "seats")
    assert msg["data"] == {"session_id": public, "seats_left": 2}
    # The mentor may follow their own draft.
    await other_mentor_ws.send_json({"type": "subscribe", "session_id": draft})
    assert (await next_of(other_mentor_ws, "subscribed"))["type"] == "subscribed"
    await ws.close()
    await other_mentor_ws.close()


async def test_malformed_messages_get_errors_and_socket_stays(client, learner):
    ws = await ws_for(learner)
    for bad in ("not json", "[1,2]", '{"no":"type"}', '{"type":"bogus"}', '{"type":"subscribe","session_id":"x"}'):
        await ws.send_str(bad)
        assert (await next_of(ws, "error"))["type"] == "error"
    await ws.send_json({"type": "ping"})
    assert (await next_of(ws, "pong"))["type"] == "pong"
    await ws.close()


async def test_oversized_message_closes(client, learner):
    ws = await ws_for(learner)
    await ws.send_str("x" * (70 * 1024))
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1009


async def test_logout_closes_the_socket(client, learner):
    ws = await ws_for(learner)
    resp = await learner.post("/api/auth/logout")
    assert resp.status == 200
    msg = await next_of(ws, "never")
    assert msg["type"] == "_closed"
    assert ws.close_code == 4001


async def test_deactivation_closes_the_socket(client, learner, admin):
    ws = await ws_for(learner)
    resp = await admin.post(f"/api/users/{learner.id}/deactivate")
    assert resp.status == 200
    assert (await next_of(ws, "never"))["type"] == "_closed"


async def test_online_count_and_close_on_disconnect(client, learner):
    hub = client.app[HUB]
    ws = await ws_for(learner)
    assert hub.online_count() == 1
    await ws.close()

    async def gone():
        while hub.online_count():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(gone(), TIMEOUT)


async def test_seats_pushed_to_viewers_when_someone_books(client, learner, mentor):
    from tests.conftest import signup

    sid = await make_session(client, mentor.id)
    viewer = await ws_for(learner)
    await viewer.send_json({"type": "subscribe", "session_id": sid})
    assert (await next_of(viewer, "subscribed"))["type"] == "subscribed"
    other = await signup(client, "learner")
    resp = await other.post("/api/bookings/create", json={"session_id": sid})
    assert resp.status == 201, await resp.text()
    msg = await next_of(viewer, "seats")
    assert msg["data"]["session_id"] == sid and msg["data"]["seats_left"] == 2
    await viewer.close()
