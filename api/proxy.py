"""The client behind a trusted reverse proxy: real IP and scheme, from trusted hops only.

``X-Forwarded-For`` / ``X-Forwarded-Proto`` are plain request headers anyone can
send. They are believed only when the TCP peer is one of
``settings.trusted_proxies`` (addresses or networks, e.g. ``127.0.0.1`` for an
nginx on the same machine). Then the request is cloned with ``remote`` set to
the nearest untrusted address of the chain and ``scheme`` to the forwarded
protocol, so everything downstream (rate limits, ``request.secure`` for
``Secure`` cookies, WebSocket URLs) reads the usual attributes and never the
headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from api.keys import SETTINGS, TRUSTED_NETWORKS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDED_HEADERS = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded")


def parse_networks(value: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → networks; a bad entry is a configuration error."""
    out: list[Network] = []
    for item in value.split(","):
        item = item.strip()
        if item:
            out.append(ipaddress.ip_network(item, strict=False))
    return tuple(out)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def is_trusted(address: str | None, networks: Iterable[Network]) -> bool:
    ip = _ip(address or "")
    return ip is not None and any(ip in net for net in networks)


def forwarded_client(remote: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client address: walk the chain from the nearest hop, skipping trusted proxies."""
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    client = remote
    for hop in reversed(hops):
        if _ip(hop) is None:
            break  # garbage in the chain: stop at the last address we could vouch for
        client = hop
        if not is_trusted(hop, networks):
            break
    return client


def is_proxied(request: web.Request) -> bool:
    """True when a proxy (trusted or not) says it forwarded this request."""
    return any(h in request.headers for h in FORWARDED_HEADERS)


@web.middleware
async def proxy_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    networks: tuple[Network, ...] = request.app[TRUSTED_NETWORKS]
    if networks and is_trusted(request.remote, networks) and is_proxied(request):
        changes: dict[str, Any] = {}
        forwarded_for = request.headers.get("X-Forwarded-For", "")
        if forwarded_for:
            changes["remote"] = forwarded_client(request.remote or "", forwarded_for, networks)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        if changes:
            request = request.clone(**changes)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Parse ``settings.trusted_proxies`` once (a typo fails at start, not per request)."""
    app[TRUSTED_NETWORKS] = parse_networks(app[SETTINGS].trusted_proxies)
