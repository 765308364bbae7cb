"""The realtime hub behind ``GET /ws``: per-user and per-session channels over the broker.

Every socket listens to ``user:{id}`` from the start and may add
``session:{id}`` channels it is allowed to see. All fan-out goes through the
broker, so with Redis a message published by one process reaches sockets held
by another. Server → client frames are ``{"type": ..., "data": {...}}``.

Protection:
- authentication before the upgrade (401 otherwise); a cookie-authenticated
  socket must come from our own origin (403 otherwise, against cross-site
  WebSocket hijacking);
- frames over ``MAX_MESSAGE_BYTES`` close the socket (1009); too many frames
  per second close it (1008); malformed frames get ``{"type": "error"}``;
- a client that cannot keep up (more than ``SLOW_CONSUMER_BYTES`` unsent, or one send of
  the per-socket path taking longer than ``settings.ws_send_timeout_seconds``) is dropped
  with close code 4008: the publisher never waits for it;
- protocol heartbeats (ping/pong frames) plus an application ``ping`` message, one shared
  frame to every socket every ``settings.ws_ping_seconds``.

Fan-out: a broker message is written to every socket of the channel at once, in the
broker's loop, as one frame encoded once (api/realtime_frames.py): no task or queue per
socket wakes for it. Only messages that need this socket's own treatment (``ready``, whose
payload depends on who watches; control messages such as logout) and whatever follows them
while they are handled go through a per-socket task, started when needed and gone when done.
- logout / deactivation close the user's sockets in every process (a control
  message on the user's channel), shutdown closes them all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy import select

from api.auth import CurrentUser, resolve_token
from api.broker import Subscription
from api.errors import ApiError
from api.keys import BROKER, DB, METRICS, SETTINGS
from api.models import Booking, BookingStatus, Role, Session, SessionStatus
from api.realtime_frames import SLOW_CONSUMER_BYTES, FrameCache, encode, write_frame
from api.security import AUTH_COOKIE
from api.services.catalog_reads import SEATS
from api.services.notifications import session_channel, user_channel

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SUBSCRIPTIONS = 50
# Messages waiting for a socket's own task (ready, control, what came after them).
MAX_PENDING = 256
# Client frames: a burst of RATE_BURST, refilled at RATE_PER_SECOND.
RATE_PER_SECOND = 20.0
RATE_BURST = 40.0
CONTROL = "_control"
CLOSE_LOGOUT = 4001
CLOSE_SLOW = 4008


class ReadyView(str, enum.Enum):
    """What of a session's ``ready`` messages a subscriber sees: the rule of
    ``GET /api/rooms/{id}/ready`` (api/services/readiness.py)."""

    everyone = "everyone"  # the session's mentor, admins
    own = "own"  # a booked learner: the mentor and themself; other learners anonymised
    nothing = "nothing"  # anyone else (browsing the catalogue, a cancelled booking)


READY_VIEW_TTL = 30.0


def visible_ready(view: ReadyView, user_id: int, data: dict[str, Any]) -> dict[str, Any] | None:
    """The ``ready`` payload as this viewer may see it, or None."""
    if view == ReadyView.everyone:
        return data
    if view == ReadyView.own:
        if data.get("role") == "mentor" or data.get("user_id") == user_id:
            return data
        # Still a signal that the ready count changed (the lobby refreshes it), not who.
        return {**data, "user_id": None}
    return None


@dataclass(eq=False)
class Connection:
    """One open socket of one user."""

    ws: web.WebSocketResponse
    user: CurrentUser
    transport: Any
    sub: Subscription = field(init=False)
    # The socket's own task, only while ``pending`` messages are being handled.
    writer: asyncio.Task[None] | None = None
    pending: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    closing: bool = False
    live: bool = False  # hello sent: frames may be written to the transport directly
    close_reason: tuple[int, str] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    tokens: float = RATE_BURST
    last_refill: float = field(default_factory=time.monotonic)
    # Per subscribed session: how much of its readiness this user may see, and since when.
    ready_views: dict[int, tuple[ReadyView, float]] = field(default_factory=dict)

    def allow_frame(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.last_refill) * RATE_PER_SECOND)
        self.last_refill = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Hub:
    """``app[HUB]`` (api/keys.py); owns every realtime socket of this process."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._conns: dict[int, set[Connection]] = {}
        settings = app[SETTINGS]
        self.heartbeat = settings.ws_heartbeat_seconds
        self.app_ping = settings.ws_ping_seconds
        self.send_timeout = settings.ws_send_timeout_seconds
        self._frames = FrameCache()
        self._pinger: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public interface
    def online_count(self) -> int:
        """Distinct users with at least one open socket in this process."""
        return sum(1 for conns in self._conns.values() if conns)

    def connection_count(self) -> int:
        return sum(len(c) for c in self._conns.values())

    def connections_of(self, user_id: int) -> int:
        return len(self._conns.get(user_id, ()))

    async def publish(self, channel: str, type_: str, data: dict[str, Any]) -> None:
        """Send ``{"type", "data"}`` to every socket listening to ``channel`` (any process)."""
        await self.app[BROKER].publish(channel, {"type": type_, "data": data})

    async def close_user(self, user_id: int) -> None:
        """Close every socket of this user, here and in other processes."""
        await self._close_local(user_id, None)
        await self.app[BROKER].publish(user_channel(user_id), {"type": CONTROL, "action": "close"})

    async def close_user_token(self, user_id: int, jti: str) -> None:
        """Close the sockets opened with one token (logout of one device)."""
        await self._close_local(user_id, jti)
        await self.app[BROKER].publish(user_channel(user_id), {"type": CONTROL, "action": "close", "jti": jti})

    async def shutdown(self) -> None:
        """Close every socket (server going away)."""
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
            self._pinger = None
        conns = [c for cs in self._conns.values() for c in cs]
        await asyncio.gather(
            *(self._close(c, WSCloseCode.GOING_AWAY, "server shutdown", wait=True) for c in conns),
            return_exceptions=True,
        )

    # ------------------------------------------------------------------ the handler
    async def handle(self, request: web.Request) -> web.StreamResponse:
        user = await self._authenticate(request)
        # No permessage-deflate: the messages are tens to hundreds of bytes (nothing to gain),
        # and each socket's zlib stream would cost up to 256 KB and a compress per message,
        # where uncompressed frames are encoded once for all sockets (api/realtime_frames.py).
        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat or None, max_msg_size=MAX_MESSAGE_BYTES, autoping=True, compress=False
        )
        if not ws.can_prepare(request).ok:
            raise ApiError(400, "websocket_required", "This endpoint only speaks WebSocket.")
        conn = Connection(ws=ws, user=user, transport=request.transport)
        # Subscribe before the handshake completes: nothing published after connect is missed
        # (until ``hello`` is out, ``_deliver`` queues: the transport is not a WebSocket yet).
        sub = conn.sub = await self.app[BROKER].subscribe(
            {user_channel(user.id)}, sink=lambda m: self._deliver(conn, m)
        )
        try:
            await ws.prepare(request)
        except Exception:
            await sub.close()
            raise
        self._conns.setdefault(user.id, set()).add(conn)
        self._start_pinger()
        gauge = self.app[METRICS].websockets.labels("realtime")
        gauge.inc()
        reader = asyncio.create_task(self._reader(conn), name=f"ws-reader-{user.id}")
        stop = asyncio.create_task(conn.stop.wait())
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, user.expires_at.timestamp() - time.time()), self._drop_soon, conn, CLOSE_LOGOUT
        )
        try:
            await self._send(conn, "hello", {"user_id": user.id, "role": user.role})
            conn.live = True
            if conn.pending:  # published between subscribe and hello
                self._start_writer(conn)
            # The socket is closed by this task only (aiohttp's close handshake is clean that
            # way): either the client goes, or someone asks (logout, slow client, shutdown).
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            expiry.cancel()
            conn.closing = True
            tasks = [t for t in (reader, stop, conn.writer) if t is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await sub.close()
            conns = self._conns.get(user.id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    self._conns.pop(user.id, None)
            gauge.dec()
            if not ws.closed:
                code, reason = conn.close_reason or (WSCloseCode.OK, "")
                try:
                    await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 2)
                except Exception:  # noqa: BLE001 - a stuck peer: cut the connection
                    if conn.transport is not None:
                        conn.transport.abort()
            conn.closed.set()
        return ws

    async def _authenticate(self, request: web.Request) -> CurrentUser:
        token = request.query.get("token", "")
        via_cookie = False
        header = request.headers.get("Authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        if not token:
            token = request.cookies.get(AUTH_COOKIE, "")
            via_cookie = bool(token)
        if not token:
            raise ApiError(401, "unauthorized", "Authentication required.")
        user = await resolve_token(request, token, via_cookie)
        if via_cookie and not self._same_origin(request):
            raise ApiError(403, "forbidden_origin", "Cross-origin WebSocket refused.")
        return user

    def _same_origin(self, request: web.Request) -> bool:
        return same_origin(request)

    async def _reader(self, conn: Connection) -> None:
        ws = conn.ws
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if not conn.allow_frame():
                    self._drop_soon(conn, WSCloseCode.POLICY_VIOLATION)
                    break
                await self._on_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await self._error(conn, "unsupported", "Binary frames are not supported.")
            elif msg.type == WSMsgType.ERROR:
                break

    async def _on_text(self, conn: Connection, raw: str) -> None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            await self._error(conn, "malformed", "Messages must be JSON objects.")
            return
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            await self._error(conn, "malformed", "Messages must be JSON objects with a type.")
            return
        kind = data["type"]
        if kind == "ping":
            await self._send(conn, "pong", {})
        elif kind == "pong":
            return
        elif kind in ("subscribe", "unsubscribe"):
            sid = data.get("session_id")
            if not isinstance(sid, int) or isinstance(sid, bool) or sid <= 0 or sid > 2**31 - 1:
                await self._error(conn, "invalid_session", "session_id must be a positive integer.")
                return
            channel = session_channel(sid)
            if kind == "unsubscribe":
                conn.ready_views.pop(sid, None)
                await conn.sub.remove(channel)
                await self._send(conn, "unsubscribed", {"session_id": sid})
                return
            if len(conn.sub.channels) > MAX_SUBSCRIPTIONS:
                await self._error(conn, "too_many_subscriptions", "Too many subscriptions on one socket.")
                return
            if not await self.may_see_session(conn.user, sid):
                await self._error(conn, "forbidden", "You may not follow this session.", session_id=sid)
                return
            conn.ready_views.pop(
                sid, None
            )  # looked up at its first 'ready' message (rare; browse pages subscribe to many)
            await conn.sub.add(channel)
            await self._send(conn, "subscribed", {"session_id": sid})
        else:
            await self._error(conn, "unknown_type", f"Unknown message type {kind[:40]!r}.")

    async def may_see_session(self, user: CurrentUser, session_id: int) -> bool:
        """Published sessions: anyone signed in; drafts: their mentor and admins."""
        db = self.app[DB]
        # Who may follow a session depends on its mentor and status only. Cached (forgotten at
        # any other write to sessions) and loaded once for concurrent askers: when thousands of
        # pages (re)connect to one popular class at once, they cost one query, not thousands
        # queued on the read pool (benchmarks/realtime_fanout.py saw its 30 s timeout).
        cache = db.caches.cache("realtime.session_view", ("sessions",), max_entries=10_000, ignores=(SEATS,))

        async def load() -> tuple[int, SessionStatus | None]:
            async with db.read() as s:
                row = (
                    await s.execute(select(Session.mentor_id, Session.status).where(Session.id == session_id))
                ).first()
            return (row[0], row[1]) if row is not None else (0, None)

        mentor_id, status = await cache.get_or_load(session_id, load)
        if status is None:
            return False
        if status == SessionStatus.draft:
            return user.id == mentor_id or user.role == Role.admin.value
        return True

    async def ready_view(self, user: CurrentUser, session_id: int) -> ReadyView:
        """Who is ready in a session is for its mentor, its booked learners and admins only."""
        if user.role == Role.admin.value:
            return ReadyView.everyone
        async with self.app[DB].read() as s:
            mentor_id = await s.scalar(select(Session.mentor_id).where(Session.id == session_id))
            if mentor_id == user.id:
                return ReadyView.everyone
            booked = await s.scalar(
                select(Booking.id)
                .where(
                    Booking.session_id == session_id,
                    Booking.learner_id == user.id,
                    Booking.status.in_((BookingStatus.confirmed, BookingStatus.attended)),
                )
                .limit(1)
            )
        return ReadyView.own if booked is not None else ReadyView.nothing

    async def _filter_ready(self, conn: Connection, message: dict[str, Any]) -> dict[str, Any] | None:
        data = message.get("data")
        sid = data.get("session_id") if isinstance(data, dict) else None
        if not isinstance(sid, int):
            return None
        view, since = conn.ready_views.get(sid, (ReadyView.nothing, -READY_VIEW_TTL - 1.0))
        if time.monotonic() - since > READY_VIEW_TTL:  # first time, or bookings changed since
            view = await self.ready_view(conn.user, sid)
            conn.ready_views[sid] = (view, time.monotonic())
        shown = visible_ready(view, conn.user.id, data)  # type: ignore[arg-type]
        return None if shown is None else {**message, "data": shown}

    # ------------------------------------------------------------------ fan-out
    def _deliver(self, conn: Connection, message: dict[str, Any]) -> None:
        """The broker's sink for this socket: write the shared frame now, or queue for the
        socket's own task (never blocks, never raises into the broker's loop)."""
        if conn.closing:
            return
        kind = message.get("type")
        if not conn.live or conn.writer is not None or kind == CONTROL or kind == "ready":
            self._enqueue(conn, message)
            return
        try:
            refused = write_frame(conn.transport, self._frames.frame(message))
        except Exception:  # noqa: BLE001 - one broken socket must not stop the fan-out
            log.debug("realtime write for user %s failed", conn.user.id, exc_info=True)
            refused = "gone"
        if refused == "slow":
            self._drop_slow(conn, f"over {SLOW_CONSUMER_BYTES} bytes unsent")
        elif refused is not None:
            self._drop_soon(conn)

    def _enqueue(self, conn: Connection, message: dict[str, Any]) -> None:
        if len(conn.pending) >= MAX_PENDING:
            self._drop_slow(conn, f"{MAX_PENDING} messages queued")
            return
        conn.pending.append(message)
        if conn.live:
            self._start_writer(conn)

    def _start_writer(self, conn: Connection) -> None:
        if conn.writer is None and not conn.closing:
            conn.writer = asyncio.create_task(self._writer(conn), name=f"ws-writer-{conn.user.id}")

    async def _writer(self, conn: Connection) -> None:
        """Handle this socket's queued messages in order, then end (later messages take the
        direct path again)."""
        try:
            while conn.pending and not conn.closing:
                message = conn.pending.popleft()
                if message.get("type") == CONTROL:
                    if message.get("action") == "close" and message.get("jti") in (None, conn.user.jti):
                        await self._close(conn, CLOSE_LOGOUT, "signed out")
                        return
                    continue
                if message.get("type") == "ready":
                    filtered = await self._filter_ready(conn, message)
                    if filtered is None:
                        continue
                    message = filtered
                if not await self._send_raw(conn, message):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken socket must not take the hub down
            log.debug("realtime writer for user %s ended", conn.user.id, exc_info=True)
            self._drop_soon(conn)
        finally:
            if conn.writer is asyncio.current_task():
                conn.writer = None

    def _start_pinger(self) -> None:
        if self._pinger is None and self.app_ping:
            self._pinger = asyncio.create_task(self._ping_all(), name="ws-app-ping")

    async def _ping_all(self) -> None:
        """The application ``ping`` (pages answer ``pong``; a page that hears nothing for long
        reconnects): one frame for every socket, rather than a timer per socket."""
        while True:
            await asyncio.sleep(self.app_ping)
            message = {"type": "ping", "data": {"t": int(time.time())}}
            for conns in list(self._conns.values()):
                for conn in list(conns):
                    self._deliver(conn, message)

    async def _send(self, conn: Connection, type_: str, data: dict[str, Any]) -> bool:
        return await self._send_raw(conn, {"type": type_, "data": data})

    async def _send_raw(self, conn: Connection, message: dict[str, Any]) -> bool:
        if conn.ws.closed or conn.closing:
            return False
        try:
            await asyncio.wait_for(conn.ws.send_str(encode(message).decode()), self.send_timeout)
            return True
        except asyncio.TimeoutError:
            self._drop_slow(conn, f"a send took over {self.send_timeout} s")
            return False
        except (ConnectionError, RuntimeError):
            self._drop_soon(conn)
            return False

    async def _error(self, conn: Connection, code: str, message: str, **extra: Any) -> None:
        await self._send(conn, "error", {"code": code, "message": message, **extra})

    def _drop_slow(self, conn: Connection, why: str) -> None:
        """Close a client that cannot keep up (4008), counted for operators."""
        if conn.close_reason is None:
            log.info("dropping slow realtime client of user %s: %s", conn.user.id, why)
            self.app[METRICS].websockets_dropped.inc()
        self._drop_soon(conn, CLOSE_SLOW)

    def _drop_soon(self, conn: Connection, code: int = CLOSE_SLOW) -> None:
        """Close from a synchronous callback (broker overflow, timers, the writer)."""
        if conn.close_reason is None:
            conn.close_reason = (code, "dropped")
        conn.stop.set()

    async def _close(self, conn: Connection, code: int, reason: str, *, wait: bool = False) -> None:
        """Ask the socket's handler to close it; with ``wait``, until it has (bounded)."""
        if conn.close_reason is None:
            conn.close_reason = (code, reason)
        conn.stop.set()
        if wait and asyncio.current_task() is not conn.writer:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.closed.wait(), 5)

    async def _close_local(self, user_id: int, jti: str | None) -> None:
        conns = [c for c in self._conns.get(user_id, ()) if jti is None or c.user.jti == jti]
        await asyncio.gather(*(self._close(c, CLOSE_LOGOUT, "signed out") for c in conns), return_exceptions=True)


def same_origin(request: web.Request) -> bool:
    """A cookie-authenticated WebSocket must come from our own pages (cross-site WebSocket
    hijacking: browsers attach cookies to any site's handshake, but always send Origin)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin on a WebSocket handshake
    parts = urlsplit(origin)
    settings = request.app[SETTINGS]
    allowed = {f"{request.scheme}://{request.host}".lower()}
    public = urlsplit(settings.public_url)
    if public.scheme and public.netloc:
        allowed.add(f"{public.scheme}://{public.netloc}".lower())
    for extra in settings.allowed_origins.split(","):
        if extra.strip():
            allowed.add(extra.strip().rstrip("/").lower())
    return f"{parts.scheme}://{parts.netloc}".lower() in allowed
