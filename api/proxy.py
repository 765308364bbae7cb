"""The client behind a trusted reverse proxy: real IP and scheme, from trusted hops only.

``X-Forwarded-For`` (or, alone, ``X-Real-IP``) / ``X-Forwarded-Proto`` are plain
request headers anyone can send. They are believed only when the TCP peer is one of
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
# Any of these says a proxy forwarded the request: the standard Forwarded and Via, every
# X-Forwarded-* (For, Proto, Host, Port, Server, Ssl, Prefix ...), and the client-address
# headers proxies and CDNs set instead or as well (nginx's X-Real-IP is the usual one). A
# proxy that sets only one of them is still a proxy: "is this request direct?" must not
# depend on which headers a particular proxy configuration happens to add.
FORWARDED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Forwarded",
        "Via",
        "X-Real-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "X-Original-Forwarded-For",
        "X-ProxyUser-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "Front-End-Https",
        "X-Url-Scheme",
    )
)
FORWARDED_PREFIX = "x-forwarded-"


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
    """True when a proxy (trusted or not) says it forwarded this request: any forwarding
    header at all, whatever its value."""
    return any(
        name.lower() in FORWARDED_HEADERS or name.lower().startswith(FORWARDED_PREFIX) for name in request.headers
    )


@web.middleware
async def proxy_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    networks: tuple[Network, ...] = request.app[TRUSTED_NETWORKS]
    if networks and is_trusted(request.remote, networks) and is_proxied(request):
        changes: dict[str, Any] = {}
        forwarded_for = request.headers.get("X-Forwarded-For", "")
        real_ip = request.headers.get("X-Real-IP", "").strip()
        if forwarded_for:
            changes["remote"] = forwarded_client(request.remote or "", forwarded_for, networks)
        elif _ip(real_ip) is not None:
            # A proxy configured with only `proxy_set_header X-Real-IP $remote_addr` (nginx)
            # names the client there; without this every client would share the proxy's limits.
            changes["remote"] = real_ip
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        if changes:
            request = request.clone(**changes)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Parse ``settings.trusted_proxies`` once (a typo fails at start, not per request)."""
    app[TRUSTED_NETWORKS] = parse_networks(app[SETTINGS].trusted_proxies)
