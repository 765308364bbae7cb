"""One process of the realtime fan-out load generator (benchmarks/realtime_fanout.py).

It opens its share of authenticated ``/ws`` sockets (aiohttp on uvloop, a bounded
number of handshakes in flight), subscribes each to the busy session's channel,
and timestamps every ``seats`` message each socket receives. The parent talks to
it over a ``multiprocessing`` pipe:

    child -> parent  ("ready", {connected, failures})      once every socket is subscribed
    child -> parent  ("progress", messages_received)        every PROGRESS_EVERY seconds
    parent -> child  ("finish", [(seats_left, t0), ...])    the changes, with when each was asked for
    child -> parent  ("result", {...})                      latencies, losses, closes

Times are ``time.monotonic()`` (CLOCK_MONOTONIC: one clock for every process on the host), so a
latency is "the booking request was sent" -> "this socket read the new seat count".
"""

from __future__ import annotations

import array
import asyncio
import os
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

PROGRESS_EVERY = 0.25
HANDSHAKE_TIMEOUT = 60.0


class Sockets:
    """The sockets of this process and what each has received."""

    def __init__(self, url: str, session_id: int) -> None:
        self.url = url
        self.session_id = session_id
        # per socket: seats_left -> monotonic time it arrived (first time only)
        self.seen: list[dict[int, float]] = []
        self.closed: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.received = 0
        self.readers: list[asyncio.Task[None]] = []

    async def open(self, http: Any, token: str, gate: asyncio.Semaphore) -> None:
        import aiohttp

        async with gate:
            try:
                # compress=15: offer permessage-deflate as browsers do (the server decides)
                ws = await http.ws_connect(
                    f"{self.url}/ws?token={token}", timeout=HANDSHAKE_TIMEOUT, max_msg_size=0, compress=15
                )
                hello = await ws.receive_json(timeout=HANDSHAKE_TIMEOUT)
                if hello.get("type") != "hello":
                    raise RuntimeError(f"first message {hello.get('type')!r}")
                await ws.send_str(f'{{"type":"subscribe","session_id":{self.session_id}}}')
                while True:  # a notification may come first (bookers are watchers too)
                    msg = await ws.receive_json(timeout=HANDSHAKE_TIMEOUT)
                    if msg.get("type") in ("subscribed", "error"):
                        break
                if msg["type"] != "subscribed":
                    await ws.close()
                    raise RuntimeError(f"subscribe refused: {msg['data'].get('code')}")
            except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError, ValueError, TypeError) as exc:
                # (TypeError: aiohttp's WSMessageTypeError, a close where a message was due)
                self.failures[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                return
        seen: dict[int, float] = {}
        self.seen.append(seen)
        self.readers.append(asyncio.create_task(self._read(ws, seen)))

    async def _read(self, ws: Any, seen: dict[int, float]) -> None:
        import orjson
        from aiohttp import WSMsgType

        marker = '"seats"'
        async for msg in ws:
            now = time.monotonic()
            if msg.type != WSMsgType.TEXT:
                continue
            if marker not in msg.data:  # hello, ping, notifications: not what is measured
                continue
            data = orjson.loads(msg.data)
            if data.get("type") == "seats" and data["data"].get("session_id") == self.session_id:
                seen.setdefault(int(data["data"]["seats_left"]), now)
                self.received += 1
        self.closed[str(ws.close_code)] += 1

    def result(self, changes: list[tuple[int, float]]) -> dict[str, Any]:
        latencies = array.array("d")
        lost = 0
        for seen in self.seen:
            for left, t0 in changes:
                t = seen.get(left)
                if t is None:
                    lost += 1
                else:
                    latencies.append(t - t0)
        return {
            "sockets": len(self.seen),
            "lost": lost,
            "closed": dict(self.closed),
            "failures": dict(self.failures),
            "latencies": latencies.tobytes(),
        }


async def _main(pipe: Connection, url: str, tokens: list[str], session_id: int, in_flight: int) -> None:
    import aiohttp

    socks = Sockets(url, session_id)
    gate = asyncio.Semaphore(in_flight)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(socks.open(http, t, gate) for t in tokens))
        pipe.send(("ready", {"connected": len(socks.seen), "failures": dict(socks.failures)}))
        loop = asyncio.get_running_loop()
        order: asyncio.Future[Any] = loop.create_future()

        def on_pipe() -> None:
            if pipe.poll() and not order.done():
                order.set_result(pipe.recv())

        loop.add_reader(pipe.fileno(), on_pipe)
        # uvloop made the pipe's socket non-blocking: the result (megabytes) must not meet EAGAIN
        os.set_blocking(pipe.fileno(), True)
        while not order.done():
            pipe.send(("progress", socks.received))
            await asyncio.wait({order}, timeout=PROGRESS_EVERY)
        loop.remove_reader(pipe.fileno())
        kind, changes = order.result()
        assert kind == "finish"
        pipe.send(("result", socks.result(changes)))
        for task in socks.readers:
            task.cancel()


def run(pipe: Connection, url: str, tokens: list[str], session_id: int, in_flight: int) -> None:
    """multiprocessing target: hold ``tokens``' sockets until the parent says finish."""
    import traceback

    try:
        import uvloop

        uvloop.run(_main(pipe, url, tokens, session_id, in_flight))
    except BaseException:  # the parent reports it instead of waiting on a dead pipe
        pipe.send(("error", traceback.format_exc()[-2000:]))
        raise
