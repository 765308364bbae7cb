"""Issue 14: a client's SDP cannot make the SFU send connectivity checks into private
networks (127.0.0.1, 10/8, 192.168/16, link-local, mDNS names) unless configured."""

from __future__ import annotations

import asyncio
import ipaddress
import json

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack
from sfu_client import QueueChannel

from sfu import ParticipantInfo, SfuConfig, serve_participant
from sfu.transport import aiortc_bridge as bridge
from sfu.transport.ice import filter_remote_candidates, remote_address_allowed

SDP = (
    "v=0\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    "a=candidate:2 1 UDP 1694498815 198.51.100.20 6000 typ srflx raddr 10.0.0.1 rport 5000\r\n"
    "a=candidate:2 1 UDP 1694498815 8.8.4.4 6000 typ srflx raddr 10.0.0.1 rport 5000\r\n"
    "a=candidate:3 1 udp 2130706431 0b1c2d3e.local 5000 typ host\r\n"
    "a=candidate:4 1 udp 2130706431 192.168.1.2 5000 typ host\r\n"
    "a=candidate:5 1 udp 2130706431 ::ffff:10.0.0.1 5000 typ host\r\n"
    "a=candidate:6 1 udp 2130706431 169.254.10.1 5000 typ host\r\n"
    "a=candidate:7 1 udp 2130706431 100.64.0.1 5000 typ host\r\n"
    "a=candidate:8 1 udp 2130706431 fe80::1 5000 typ host\r\n"
    "a=candidate:9 1 udp 2130706431 ::1 5000 typ host\r\n"
    "a=candidate:10 1 udp 16777215 2a00:1450:4001::1 7000 typ relay raddr 0.0.0.0 rport 0\r\n"
    "a=end-of-candidates\r\n"
)


def test_only_global_candidates_survive() -> None:
    kept = filter_remote_candidates(SDP, allow_private=False)
    addresses = [line.split()[4] for line in kept.splitlines() if line.startswith("a=candidate")]
    assert addresses == ["8.8.4.4", "2a00:1450:4001::1"]
    assert kept.startswith("v=0\r\n") and kept.endswith("a=end-of-candidates\r\n")
    assert filter_remote_candidates(SDP, allow_private=True) == SDP
    assert not remote_address_allowed("127.0.0.1", allow_private=False)
    assert remote_address_allowed("127.0.0.1", allow_private=True)


def test_the_default_refuses_private_candidates() -> None:
    assert SfuConfig().allow_private_candidates is False


async def _server_side_remote_addresses(engine, allow: bool) -> list[str]:
    engine.config.allow_private_candidates = allow
    router = engine.create_router(f"ice-{allow}", max_peers=2)
    channel = QueueChannel()
    task = asyncio.ensure_future(serve_participant(router, channel, ParticipantInfo("1")))
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client.addTrack(AudioStreamTrack())
    try:
        await client.setLocalDescription(await client.createOffer())
        offer = client.localDescription.sdp
        assert "typ host" in offer  # this machine's (private) addresses
        await channel.to_server.put(json.dumps({"type": "join"}))
        await channel.to_server.put(json.dumps({"type": "offer", "sdp": offer}))
        while True:
            msg = await asyncio.wait_for(channel.to_client.get(), 10)
            assert msg is not None and msg["type"] != "error", msg
            if msg["type"] == "answer":
                break
        (peer,) = router.peers.values()
        return [c.host for conn in bridge.ice_connections(peer.pc) for c in conn.remote_candidates]
    finally:
        await client.close()
        await channel.to_server.put(None)
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("allow", [False, True])
async def test_server_never_pairs_private_addresses_unless_allowed(engine, allow) -> None:
    hosts = await _server_side_remote_addresses(engine, allow)
    private = [h for h in hosts if not ipaddress.ip_address(h).is_global]
    if allow:
        assert private, hosts  # development/tests: this machine's addresses are used
    else:
        assert private == [], hosts
