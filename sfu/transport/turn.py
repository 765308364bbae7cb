"""TURN REST ephemeral credentials (coturn ``use-auth-secret``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Optional


def turn_credentials(secret: str, user: str, ttl: int = 3600, *, now: Optional[float] = None) -> tuple[str, str]:
    """(username, password): username ``expiry:user``, password
    base64(HMAC-SHA1(secret, username)), valid for ``ttl`` seconds."""
    if ttl <= 0:
        raise TypeError("ttl must be positive")
    if ":" in user:
        raise TypeError("user must not contain ':'")
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(
    *,
    secret: Optional[str],
    user: str,
    turn_urls: list[str],
    stun_urls: Optional[list[str]] = None,
    ttl: int = 3600,
    now: Optional[float] = None,
) -> list[dict[str, Any]]:
    """The ``ice_servers`` list handed to a client (RTCPeerConnection config)."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and secret:
        username, credential = turn_credentials(secret, user, ttl, now=now)
        servers.append({"urls": list(turn_urls), "username": username, "credential": credential})
    return servers
