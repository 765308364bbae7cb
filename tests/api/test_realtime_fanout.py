"""Fan-out on /ws as its users notice it: every watcher of a class gets every change, once and
in order; a client that stops reading is closed (4008) while the others miss nothing and the
publisher never waits; idle sockets still hear the application ping."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from dataclasses import replace
from typing import Any

from api.app import create_app
from api.keys import HUB
from api.settings import Settings
from tests.api.test_realtime import TIMEOUT, make_session, next_of, ws_for
from tests.conftest import signup

CLOSE_SLOW = 4008


async def subscribed(user: Any, session_id: int) -> Any:
    ws = await ws_for(user)
    await ws.send_json({"type": "subscribe", "session_id": session_id})
    assert (await next_of(ws, "subscribed"))["type"] == "subscribed"
    return ws


async def seats_seen(ws: Any, count: int) -> list[int]:
    out = []
    while len(out) < count:
        msg = await next_of(ws, "seats")
        assert msg["type"] == "seats", msg
        out.append(msg["data"]["seats_left"])
    return out


async def test_every_watcher_gets_every_change_once_and_in_order(client, mentor):
    """Many sockets (several per user, as with several tabs) on one class: bookings through the
    API and direct publishes reach each of them, in the order they happened."""
    sid = await make_session(client, mentor.id)
    watchers = [await signup(client, "learner") for _ in range(4)]
    sockets = [await subscribed(w, sid) for w in watchers for _ in range(5)]
    booker = await signup(client, "learner")
    resp = await booker.post("/api/bookings/create", json={"session_id": sid})
    assert resp.status == 201, await resp.text()
    hub = client.app[HUB]
    for left in range(100, 80, -1):
        await hub.publish(f"session:{sid}", "seats", {"session_id": sid, "seats_left": left})
    expected = [2, *range(100, 80, -1)]  # capacity 3, one booked; then the published counts
    got = await asyncio.gather(*(seats_seen(ws, len(expected)) for ws in sockets))
    assert all(g == expected for g in got)
    for ws in sockets:
        await ws.close()


async def test_a_socket_not_subscribed_hears_nothing_of_the_class(client, mentor, learner):
    sid = await make_session(client, mentor.id)
    outsider = await ws_for(learner)
    watcher = await subscribed(await signup(client, "learner"), sid)
    await client.app[HUB].publish(f"session:{sid}", "seats", {"session_id": sid, "seats_left": 1})
    assert (await next_of(watcher, "seats"))["data"]["seats_left"] == 1
    await client.app[HUB].publish(f"user:{learner.id}", "marker", {})
    assert (await next_of(outsider, "marker"))["type"] == "marker"  # nothing of the class before it
    await outsider.close()
    await watcher.close()


class StuckClient:
    """A WebSocket client that subscribes and then stops reading (a frozen tab, a dead link):
    a raw socket with a tiny receive buffer, so the server's unsent bytes pile up quickly."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        self.buf = b""

    async def open(self, token: str, session_id: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self.buf += await self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        payload = json.dumps({"type": "subscribe", "session_id": session_id}).encode()
        # a client frame must be masked: a zero mask leaves the payload as it is
        self.sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
        while True:
            opcode, data = await self.frame()
            if opcode == 1 and json.loads(data)["type"] == "subscribed":
                return

    async def _recv(self) -> bytes:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        if not data:
            raise ConnectionError("closed")
        return data

    async def frame(self) -> tuple[int, bytes]:
        while True:
            if len(self.buf) >= 2:
                opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
                at = 2
                if n == 126:
                    n, at = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
                if len(self.buf) >= at + n:
                    data, self.buf = self.buf[at : at + n], self.buf[at + n :]
                    return opcode, data
            self.buf += await self._recv()

    def close(self) -> None:
        self.sock.close()


async def test_a_client_that_stops_reading_is_closed_and_the_others_miss_nothing(client, mentor, learner):
    sid = await make_session(client, mentor.id)
    good = await subscribed(await signup(client, "learner"), sid)
    stuck = StuckClient(client.host, client.port)
    await stuck.open(learner.token, sid)
    hub = client.app[HUB]
    pad = "x" * 16_000
    total = 600  # ~10 MB: more than the kernel's socket buffers and the server's allowance

    async def publish_all() -> None:
        for i in range(total):  # the publisher never waits for anyone
            await asyncio.wait_for(
                hub.publish(f"session:{sid}", "session.updated", {"session_id": sid, "i": i, "pad": pad}), 1
            )
            await asyncio.sleep(0.002)  # a steady stream the reading client keeps up with

    async def read_all() -> list[int]:
        seen = []
        while len(seen) < total:
            msg = await next_of(good, "session.updated")
            assert msg["type"] == "session.updated", msg
            seen.append(msg["data"]["i"])
        return seen

    seen, _ = await asyncio.gather(read_all(), publish_all())
    assert seen == list(range(total))
    # The stuck client, reading again, finds fewer messages than were sent, then the close.
    received, code = 0, None
    try:
        while code is None:
            opcode, data = await asyncio.wait_for(stuck.frame(), TIMEOUT)
            if opcode == 8:
                code = struct.unpack("!H", data[:2])[0]
            elif opcode == 1 and json.loads(data)["type"] == "session.updated":
                received += 1
    except ConnectionError:
        pass  # the server gave up waiting for the close handshake and cut the connection
    finally:
        stuck.close()
    assert received < total
    # A client that never reads cannot see the close frame queued behind its backlog: the
    # server sends it (4008) and cuts the connection when the handshake does not come back.
    assert code in (CLOSE_SLOW, None)
    metrics = await (await client.get("/metrics")).text()
    assert "peerlearn_websockets_slow_dropped_total 1.0" in metrics

    async def gone() -> None:
        while hub.connections_of(learner.id):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(gone(), TIMEOUT)
    await good.close()


async def test_idle_sockets_hear_the_application_ping(aiohttp_client, settings: Settings):
    client = await aiohttp_client(create_app(replace(settings, ws_ping_seconds=0.2)))
    users = [await signup(client, "learner") for _ in range(2)]
    sockets = [await ws_for(u) for u in users]
    for ws in sockets:
        ping = await next_of(ws, "ping")
        assert ping["type"] == "ping" and isinstance(ping["data"]["t"], int)
    for ws in sockets:
        await ws.close()


async def test_following_a_class_follows_its_visibility(client, mentor, learner):
    """Who may follow a session is remembered (thousands of pages reconnecting to one class cost
    one query), but a draft becoming public, or a public class going back to draft, shows at once."""
    from sqlalchemy import update

    from api.keys import DB
    from api.models import Session, SessionStatus

    sid = await make_session(client, mentor.id, SessionStatus.draft)
    ws = await ws_for(learner)

    async def subscribe() -> str:
        await ws.send_json({"type": "subscribe", "session_id": sid})
        msg = await next_of(ws, "subscribed")
        return msg["type"] if msg["type"] == "subscribed" else msg["data"]["code"]

    assert await subscribe() == "forbidden"
    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == sid).values(status=SessionStatus.scheduled))
    assert await subscribe() == "subscribed"
    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == sid).values(status=SessionStatus.draft))
    await ws.send_json({"type": "unsubscribe", "session_id": sid})
    assert (await next_of(ws, "unsubscribed"))["type"] == "unsubscribed"
    assert await subscribe() == "forbidden"
    # many sockets at once on a public class: all of them are let in
    public = await make_session(client, mentor.id)
    others = [await ws_for(learner) for _ in range(20)]
    for other in others:
        await other.send_json({"type": "subscribe", "session_id": public})
    assert all(m["type"] == "subscribed" for m in [await next_of(o, "subscribed") for o in others])
    for other in [ws, *others]:
        await other.close()
