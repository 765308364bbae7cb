"""``GET /ws``: the realtime hub's WebSocket (see api/realtime.py for the protocol)."""

from __future__ import annotations

from aiohttp import web

from api.keys import SERVICES
from api.realtime import Hub
from api.routing import ApiRoutes

routes = ApiRoutes("realtime")  # the WebSocket is not a JSON route; nothing in OpenAPI


def setup(app: web.Application) -> None:
    hub = Hub(app)
    app[SERVICES]["hub"] = hub
    app.router.add_get("/ws", hub.handle, name="realtime_ws")

    async def _close_sockets(_app: web.Application) -> None:
        await hub.shutdown()

    app.on_shutdown.append(_close_sockets)
