"""A REST call about a live room that another process holds, forwarded to that process.

Rooms live in one process each (``api.placement``); a request about one (start or stop its
recording) may reach any worker. It goes on to the owner as it came (the caller's cookies or
bearer token and CSRF header, so the owner checks the same permissions) and its answer
comes back unchanged. Room sockets are relayed the same way in ``api.routes.rooms``.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from api.errors import ApiError
from api.placement import Node

#: set on a forwarded request: the owner answers it itself, never forwards it again
PROXIED_HEADER = "X-PeerLearn-Proxied"
FORWARDED_HEADERS = ("Authorization", "Cookie", "X-CSRF-Token", "Origin", "Referer", "Content-Type", "Accept")
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=3)


async def forward_to_owner(request: web.Request, node: Node) -> web.Response:
    """Send ``request`` (its method, path, query and body) to ``node`` and return its answer."""
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    headers[PROXIED_HEADER] = "1"
    body = await request.read()
    try:
        async with aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as http:
            async with http.request(
                request.method, node.url + request.rel_url.path_qs, headers=headers, data=body
            ) as r:
                payload = await r.read()
                return web.Response(body=payload, status=r.status, content_type=r.content_type, headers=_retry_after(r))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(
            503, "room_node_unreachable", "The class's server is not answering; try again in a moment."
        ) from exc


def _retry_after(response: aiohttp.ClientResponse) -> dict[str, str]:
    value = response.headers.get("Retry-After")
    return {"Retry-After": value} if value else {}
