"""Room placement across processes: a room lives in exactly one process.

Each process registers itself in Redis (``pl:node:{id}``, refreshed by a
heartbeat, expiring when the process dies) with its internal URL and load
(peers it serves). The first participant's process picks the least-loaded
live node and claims the room (``SET pl:room:{sid} NX``); the owner keeps
the claim alive while its Router is open. A participant whose signaling
reaches another process is proxied there. Without Redis (one process, or
Redis briefly down) every room is served locally.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.broker import RedisBroker
from sfu import Engine

log = logging.getLogger(__name__)

NODE_TTL = 6  # seconds a node stays registered without a heartbeat
ROOM_TTL = 15  # seconds a room claim survives without its owner refreshing it
HEARTBEAT = 2.0


@dataclass
class InternalAddress:
    """Where other processes reach this one: ``peerlearn serve`` sets ``url`` once its internal
    listener is up (after start-up); None while there is none (one process, tests)."""

    url: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    url: str  # internal base URL, e.g. http://127.0.0.1:41234
    load: int


class LocalPlacement:
    """One process: every room is here."""

    node_id = "local"

    async def owner(self, session_id: int) -> Node | None:
        return None

    async def holder(self, session_id: int) -> Node | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def beat_now(self) -> None:
        pass

    async def release_unreachable(self, node: Node, session_id: int) -> None:
        pass


class RedisPlacement:
    """Rooms placed on the least-loaded live process, registered in Redis."""

    def __init__(
        self,
        broker: RedisBroker,
        *,
        load: Callable[[], int],
        rooms: Callable[[], list[int]],
        internal_url: Callable[[], str | None],
    ) -> None:
        self.broker = broker
        self.redis = broker.redis
        self.node_id = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._load = load
        self._rooms = rooms
        self._internal_url = internal_url
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._exited = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._heartbeat(), name="placement-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and deregister (idempotent)."""
        if self._task is None or self._exited.is_set():
            return
        await self._started.wait()  # cancelled before its first step, it would never exit
        self._task.cancel()
        await self._exited.wait()
        try:
            await self.broker.call(lambda: self.redis.delete(f"pl:node:{self.node_id}"))
        except Exception:  # noqa: BLE001
            pass

    async def owner(self, session_id: int) -> Node | None:
        """The node that serves this room, claiming it for the least-loaded node when free.

        Returns None when this process should serve it (it owns it, or Redis is down or
        hung: the broker's heartbeat says so at once, and a call that hangs meanwhile is cut
        after twice its timeout over the few calls a placement makes).
        """
        if not self.broker.available:
            log.warning("placement unavailable (redis misses heartbeats): serving room %s locally", session_id)
            return None
        try:
            return await asyncio.wait_for(self._owner(session_id), 4 * self.broker.timeout)
        except Exception as exc:  # noqa: BLE001 - placement degrades to local, never fails a join
            log.warning("placement unavailable (%s): serving room %s locally", exc, session_id)
            return None

    async def holder(self, session_id: int) -> Node | None:
        """The other live node serving this room now, without claiming a free room (None: nobody
        else, or this process, or placement is unavailable)."""
        if not self.broker.available:
            return None
        try:
            return await asyncio.wait_for(self._holder(session_id), 4 * self.broker.timeout)
        except Exception as exc:  # noqa: BLE001 - degrade to "not here" (the caller answers 409)
            log.warning("placement unavailable (%s) looking up room %s", exc, session_id)
            return None

    async def _holder(self, session_id: int) -> Node | None:
        current = await self.redis.get(f"pl:room:{session_id}")
        if current is None:
            return None
        current = current.decode() if isinstance(current, bytes) else current
        if current == self.node_id:
            return None
        node = (await self._nodes()).get(current)
        return await self._reachable(node) if node is not None else None

    async def _owner(self, session_id: int) -> Node | None:
        key = f"pl:room:{session_id}"
        nodes = await self._nodes()
        for _ in range(3):
            current = await self.redis.get(key)
            if current is not None:
                current = current.decode() if isinstance(current, bytes) else current
                if current == self.node_id:
                    return None
                if current in nodes:
                    return await self._reachable(nodes[current])
                # The owner died: take the claim over (compare-and-delete, then claim again).
                await self.redis.delete(key)
            reachable = [n for n in nodes.values() if n.url or n.id == self.node_id]
            choice = min(reachable, key=lambda n: (n.load, n.id)) if reachable else None
            target = choice.id if choice is not None else self.node_id
            if await self.redis.set(key, target, nx=True, ex=ROOM_TTL):
                return None if target == self.node_id else nodes[target]
        return None

    async def release_unreachable(self, node: Node, session_id: int) -> None:
        """The owner of this room refused our connection (or never answered it): it is gone,
        though its registration outlives it by up to ``NODE_TTL``. Drop the registration
        and its claim on this room (compare-and-delete), so the participant's next join
        places the room on a live node at once. A node that is alive after all registers
        again at its next heartbeat and keeps its other rooms."""
        try:
            await self.broker.call(lambda: self.redis.eval(_FORGET_CLAIM, 1, f"pl:room:{session_id}", node.id))
            await self.broker.call(lambda: self.redis.delete(f"pl:node:{node.id}"))
        except Exception as exc:  # noqa: BLE001 - the TTLs still release it
            log.warning("placement: could not release room %s of %s (%r)", session_id, node.id, exc)

    async def _reachable(self, node: Node) -> Node:
        """A node registers its internal URL a moment after it starts: wait for it."""
        for _ in range(30):
            if node.url:
                return node
            await asyncio.sleep(0.1)
            node = (await self._nodes()).get(node.id, node)
        raise RuntimeError(f"node {node.id} has no internal address")

    async def beat_now(self) -> None:
        """Register at once (e.g. as soon as the internal listener is up)."""
        await self._beat()

    async def _nodes(self) -> dict[str, Node]:
        nodes: dict[str, Node] = {}
        async for raw_key in self.redis.scan_iter(match="pl:node:*", count=100):
            raw = await self.redis.get(raw_key)
            if raw is None:
                continue
            try:
                data = json.loads(raw)
                nodes[data["id"]] = Node(data["id"], data.get("url") or "", int(data.get("load", 0)))
            except (ValueError, KeyError, TypeError):
                continue
        return nodes

    async def _heartbeat(self) -> None:
        self._started.set()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._beat(), self.broker.timeout)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep beating through Redis outages
                    log.debug("placement heartbeat failed: %s", exc)
                await asyncio.sleep(HEARTBEAT)
        except asyncio.CancelledError:
            pass
        finally:
            self._exited.set()

    async def _beat(self) -> None:
        url = self._internal_url()
        payload = json.dumps({"id": self.node_id, "url": url or "", "load": self._load(), "ts": time.time()})
        pipe = self.redis.pipeline()
        pipe.set(f"pl:node:{self.node_id}", payload, ex=NODE_TTL)
        for sid in self._rooms():
            pipe.set(f"pl:room:{sid}", self.node_id, ex=ROOM_TTL)
        await pipe.execute()


Placement = LocalPlacement | RedisPlacement


def peers_served(engine: Engine) -> int:
    """This process's load: the participants of its open rooms."""
    return sum(len(r.peers) for r in engine.routers if not r.closed)


def rooms_served(engine: Engine) -> list[int]:
    """The session ids of this process's open rooms (their claims are kept alive)."""
    return [int(r.room_id) for r in engine.routers if not r.closed and r.room_id.isdigit()]


# Compare-and-delete: a claim is dropped only while it still names the dead node (a live
# node may have claimed the room again meanwhile).
_FORGET_CLAIM = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def forget_process(client: Any, pid: int) -> int:
    """A worker of this machine died (its parent saw it): drop its registration and room
    claims now, so its rooms are placed on a live node at the pages' next join instead of
    after ``NODE_TTL``/``ROOM_TTL``. ``client`` is a synchronous ``redis.Redis`` (the parent
    makes it once, at start: importing and connecting on a death cost ~1.7 s). Returns how
    many rooms were released."""
    prefix = f"{os.uname().nodename}-{pid}-"
    keys = list(client.scan_iter(match=f"pl:node:{prefix}*", count=100))
    dead = {(k.decode() if isinstance(k, bytes) else str(k))[len("pl:node:") :] for k in keys}
    if not dead:
        return 0
    client.delete(*keys)
    forget = client.register_script(_FORGET_CLAIM)
    released = 0
    for key in client.scan_iter(match="pl:room:*", count=500):
        for node_id in dead:
            released += int(forget(keys=[key], args=[node_id]))
    return released
