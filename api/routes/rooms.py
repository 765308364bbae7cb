"""Rooms: tokens for the live room, the room signaling socket, ending a class, chat history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from api.auth import CurrentUser
from api.broker import MemoryBroker
from api.context import Context
from api.errors import ApiError
from api.keys import BROKER, LIVE_ROOMS, METRICS, PLACEMENT, ROOM_SOCKETS
from api.owner_forward import forward_headers, forwarded_by_peer
from api.placement import Node
from api.routing import ApiRoutes, path_id
from api.realtime import same_origin
from api.schemas.rooms import RoomTokenOut
from api.services import room_access, rooms
from api.services.notifications import session_channel, user_channel
from sfu import ParticipantInfo, ice_servers, serve_participant

log = logging.getLogger(__name__)
routes = ApiRoutes("rooms")
MAX_SIGNALING_MESSAGE = 64 * 1024


# The room page's browser authenticates its signaling socket with this cookie, so the room
# token never appears in a URL (access logs, proxies, history); ``?token=`` stays for other
# clients. Scoped to the one room's socket path, HttpOnly, same-site only.
ROOM_COOKIE = "pl_room"


def _ws_base(request: web.Request) -> str:
    # api.proxy set the scheme from a trusted proxy's X-Forwarded-Proto (never the raw header).
    return ("wss" if request.scheme == "https" else "ws") + "://" + request.host


@routes.post("/api/rooms/{id}/token", response=RoomTokenOut, errors=(409,))
async def token(request: web.Request, *, user: CurrentUser) -> web.Response:
    """A room token (the mentor, or a learner with a booking; T-10 min until the end + grace):
    an HttpOnly cookie for the room's socket, and in the body only for bearer-token clients."""
    ctx = Context.of(request.app)
    sid = path_id(request)
    raw, admission, closes = await rooms.issue_token(ctx, sid, user.id)
    await room_access.bind_to_session(ctx.db, admission.jti, user.jti)  # logout revokes it
    settings = ctx.settings
    servers = ice_servers(
        secret=settings.turn_secret,
        user=str(user.id),
        turn_urls=[u.strip() for u in settings.turn_urls.split(",") if u.strip()],
        stun_urls=[u.strip() for u in settings.stun_urls.split(",") if u.strip()],
    )
    # A page (signed in by cookie) gets the room token only as the HttpOnly cookie below: in the
    # body, any script running in the page could read it and enter the room from elsewhere. A
    # bearer client already holds a credential no page script has; it gets the token to send.
    in_body = not user.via_cookie
    signaling_url = f"{_ws_base(request)}/ws/room/{sid}"
    out = RoomTokenOut(
        token=raw if in_body else None,
        signaling_url=f"{signaling_url}?token={raw}" if in_body else signaling_url,
        ice_servers=servers,
        role=admission.role,
        expires_at=closes,
    )
    resp = web.json_response(out.model_dump(mode="json"))
    resp.set_cookie(
        ROOM_COOKIE,
        raw,
        path=f"/ws/room/{sid}",
        httponly=True,
        samesite="Strict",
        secure=settings.secure_cookies or request.secure,
        max_age=max(60, int((closes - datetime.now(timezone.utc)).total_seconds())),
    )
    return resp


@routes.post("/api/rooms/{id}/end", errors=(409,))
async def end(request: web.Request, *, user: CurrentUser) -> dict[str, Any]:
    """The mentor ends the class: the session completes and everyone is told session-ended."""
    ctx = Context.of(request.app)
    sid = path_id(request)
    session = await rooms.end_class(ctx, sid, user.id, user.role)
    await request.app[LIVE_ROOMS].end(sid)
    await request.app[BROKER].publish(
        session_channel(sid), {"type": "session.updated", "data": {"session_id": sid, "status": session.status.value}}
    )
    return {"session_id": sid, "status": session.status.value}


@routes.get("/api/rooms/{id}/chat")
async def chat(request: web.Request, *, user: CurrentUser) -> dict[str, Any]:
    """The room's chat, kept with the session, for its participants."""
    items = await rooms.chat_history(Context.of(request.app), path_id(request), user.id, user.role)
    return {"items": items}


class AiohttpChannel:
    """The SFU's SignalingChannel over an aiohttp WebSocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def send_json(self, obj: Any) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(obj, default=str))

    async def receive_text(self) -> str | None:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.TEXT:
                return str(msg.data)
            if msg.type == WSMsgType.BINARY:
                return "\x00binary"  # not JSON: the engine answers with an error and carries on
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None

    async def close(self, code: int, reason: str) -> None:
        if not self.ws.closed:
            await self.ws.close(code=code, message=reason.encode()[:120])


@routes.websocket("/ws/room/{id}", name="room_socket")
async def room_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/room/{id}?token=ROOM_TOKEN: the signaling of docs/architecture.md (WebSocket contracts)."""
    ctx = Context.of(request.app)
    sid = path_id(request)
    raw = request.query.get("token", "")
    if not raw and request.cookies.get(ROOM_COOKIE):
        if not same_origin(request):
            raise ApiError(403, "forbidden_origin", "Cross-origin WebSocket refused.")
        raw = request.cookies[ROOM_COOKIE]
    if not raw:
        raise ApiError(401, "unauthorized", "A room token is required.")
    admission = await rooms.admit(ctx, sid, raw)
    if not forwarded_by_peer(request):
        owner = await request.app[PLACEMENT].owner(sid)
        if owner is not None:
            return await _proxy(request, owner, sid, raw)
    if admission.role == "mentor" and await rooms.start_class(ctx, sid):
        await request.app[BROKER].publish(
            session_channel(sid), {"type": "session.updated", "data": {"session_id": sid, "status": "live"}}
        )
    capacity = await rooms.capacity_of(ctx, sid)
    router = request.app[LIVE_ROOMS].router_for(sid, capacity)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_SIGNALING_MESSAGE)
    await ws.prepare(request)
    sockets = request.app[ROOM_SOCKETS]
    sockets.add(ws)
    gauge = request.app[METRICS].websockets.labels("room")
    gauge.inc()
    watcher = asyncio.create_task(
        _close_when_revoked(ctx, request.app[BROKER], ws, admission.jti, sid, admission.user_id),
        name=f"room-{sid}-revocation",
    )
    try:
        await serve_participant(
            router,
            AiohttpChannel(ws),
            ParticipantInfo(
                user_key=str(admission.user_id),
                display_name=admission.display_name,
                role=admission.role,
                app_data={"user_id": admission.user_id, "session_id": sid},
                public={"user_id": admission.user_id},
            ),
        )
    except Exception:  # noqa: BLE001 - one participant's failure never takes the server down
        log.exception("room %s: participant %s failed", sid, admission.user_id)
    finally:
        watcher.cancel()
        gauge.dec()
        sockets.discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


CLOSE_SIGNED_OUT = 4001


async def _close_when_revoked(
    ctx: Context, broker: MemoryBroker, ws: web.WebSocketResponse, room_jti: str, session_id: int, user_id: int
) -> None:
    """A participant whose seat or login session ended (a cancelled booking or class, logout,
    password change, deactivation) leaves the room at once, in whichever process holds the
    socket: every such change is followed by a message on the user's or the class's channel
    (a notification, a seat count, a sign-out), and each wakes this check. A refunded learner
    must not keep watching (docs/money.md). The periodic check covers a message lost with a
    broker outage."""
    interval = ctx.settings.room_revocation_check_seconds
    wake = asyncio.Event()
    sub = None
    try:
        try:
            channels = {user_channel(user_id), session_channel(session_id)}
            sub = await broker.subscribe(channels, sink=lambda _m: wake.set())
        except Exception:  # noqa: BLE001 - the broker is away: the periodic check alone
            log.warning("room %s: no revocation subscription, checking every %s s", session_id, interval)
        while not ws.closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()
            if not await room_access.still_valid(ctx.db, room_jti):
                await ws.close(code=CLOSE_SIGNED_OUT, message=b"seat or sign-in ended")
                return
    except asyncio.CancelledError:
        pass
    except Exception:  # noqa: BLE001 - e.g. the database is away: the socket stays, as it would have
        log.warning("room token revocation check failed", exc_info=True)
    finally:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.close()


PROXY_CONNECT_TIMEOUT = 3.0


async def _proxy(request: web.Request, node: Node, sid: int, token: str) -> web.WebSocketResponse:
    """The room lives in another process: relay this participant's signaling there.

    Media does not pass through here: the owner's ICE candidates reach the
    client in the SDP, so RTP flows straight to the owning process.
    """
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_SIGNALING_MESSAGE)
    await ws.prepare(request)
    close_code, close_msg = 1011, b"room node unreachable"
    # A dead owner on another machine never answers (no RST): give up in seconds, not minutes.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=PROXY_CONNECT_TIMEOUT)) as http:
        try:
            async with http.ws_connect(
                f"{node.url}/ws/room/{sid}",
                params={"token": token},
                headers=forward_headers(request),
                heartbeat=20,
                max_msg_size=MAX_SIGNALING_MESSAGE,
            ) as upstream:

                async def down() -> None:
                    async for msg in upstream:
                        if msg.type == WSMsgType.TEXT:
                            await ws.send_str(msg.data)

                async def up() -> None:
                    async for msg in ws:
                        if msg.type == WSMsgType.TEXT:
                            await upstream.send_str(msg.data)

                tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if upstream.closed and upstream.close_code:
                    close_code, close_msg = upstream.close_code, b"room closed"
                elif ws.closed:
                    close_code = ws.close_code or 1000
                await upstream.close()
        except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError) as exc:
            # Nobody listens where the owner was: it died. Release the room so the page's
            # next try (250 ms later) places it on a live node instead of coming back here.
            log.warning("room %s: owner node %s unreachable (%s): releasing it", sid, node.id, exc)
            await request.app[PLACEMENT].release_unreachable(node, sid)
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("room %s: cannot reach owner node %s (%s)", sid, node.id, exc)
    if not ws.closed:
        await ws.close(code=close_code, message=close_msg)
    return ws
