"""A REST call about a live room that another process holds, forwarded to that process.

Rooms live in one process each (``api.placement``); a request about one (start or stop its
recording) may reach any worker. It goes on to the owner as it came (the caller's cookies or
bearer token and CSRF header, so the owner checks the same permissions) and its answer
comes back unchanged. Room sockets are relayed the same way in ``api.routes.rooms``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

import aiohttp
from aiohttp import web

from api.context import Context
from api.errors import ApiError
from api.placement import Node

#: set on a forwarded request: the owner answers it itself, never forwards it again. Its value
#: is a mark only our processes can make (from the shared secret): a client sending the header
#: must not be able to open a second copy of a room in a process that does not own it.
PROXIED_HEADER = "X-PeerLearn-Proxied"
#: the caller's address as the forwarding process saw it (after its trusted-proxy parsing): the
#: owner's per-IP limits and access log count the learner, not the peer process that relayed
CLIENT_HEADER = "X-PeerLearn-Client"


def proxy_mark(secret: str) -> str:
    return hmac.new(secret.encode(), b"peerlearn internal forward", hashlib.sha256).hexdigest()


def forwarded_by_peer(request: web.Request) -> bool:
    """True for a request another of our processes forwarded here (it carries our mark)."""
    value = request.headers.get(PROXIED_HEADER)
    mark = proxy_mark(Context.of(request.app).settings.jwt_secret)
    return value is not None and hmac.compare_digest(value.encode(), mark.encode())


def forward_headers(request: web.Request) -> dict[str, str]:
    """Our mark and the caller's address, for a request or socket relayed to the owner."""
    headers = {PROXIED_HEADER: proxy_mark(Context.of(request.app).settings.jwt_secret)}
    if request.remote:
        headers[CLIENT_HEADER] = request.remote
    return headers


@web.middleware
async def peer_client_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """On a request one of our processes relayed (it carries our mark), the client is the one the
    relaying process named; without the mark the header is ignored, so nobody can pick an address."""
    client = request.headers.get(CLIENT_HEADER)
    if client and forwarded_by_peer(request):
        try:
            address = str(ipaddress.ip_address(client.strip()))
        except ValueError:
            address = None
        if address is not None:
            request = request.clone(remote=address)
    return await handler(request)


FORWARDED_HEADERS = ("Authorization", "Cookie", "X-CSRF-Token", "Origin", "Referer", "Content-Type", "Accept")
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=3)


async def forward_to_owner(request: web.Request, node: Node) -> web.Response:
    """Send ``request`` (its method, path, query and body) to ``node`` and return its answer."""
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    headers.update(forward_headers(request))
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
