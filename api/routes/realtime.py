"""``GET /ws``: the realtime hub's WebSocket (see api/realtime.py for the protocol)."""

from __future__ import annotations

from aiohttp import web

from api.keys import HUB
from api.routing import ApiRoutes

routes = ApiRoutes("realtime")  # the WebSocket is not a JSON route; nothing in OpenAPI


@routes.websocket("/ws", name="realtime_ws")
async def realtime_socket(request: web.Request) -> web.StreamResponse:
    """The signed-in user's realtime socket, served by the hub."""
    return await request.app[HUB].handle(request)
