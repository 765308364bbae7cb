"""TURN REST credentials (username expiry:user, password base64 HMAC-SHA1)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from sfu.transport.turn import ice_servers, turn_credentials


def test_credential_format() -> None:
    username, password = turn_credentials("s3cret", "user-42", ttl=600, now=1_700_000_000)
    assert username == "1700000600:user-42"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected


def test_ice_servers_list() -> None:
    servers = ice_servers(
        secret="k",
        user="u1",
        turn_urls=["turn:turn.example:3478?transport=udp"],
        stun_urls=["stun:turn.example:3478"],
        now=10,
        ttl=5,
    )
    assert servers[0] == {"urls": ["stun:turn.example:3478"]}
    assert servers[1]["username"] == "15:u1" and servers[1]["urls"] == ["turn:turn.example:3478?transport=udp"]
    assert ice_servers(secret=None, user="u1", turn_urls=["turn:x"]) == []


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        turn_credentials("k", "a:b")
    with pytest.raises(TypeError):
        turn_credentials("k", "a", ttl=0)
