"""Deployment ICE settings: port range, one shared port, announced IP, interfaces."""

from __future__ import annotations

import socket

import pytest

from sfu import Router, SfuConfig
from sfu.transport.ice import stun_local_ufrag


def free_udp_range(size: int) -> tuple[int, int]:
    for base in range(42000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base, base + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP range")


def server_candidates(router: Router, peer_id: str) -> list[list[str]]:
    sdp = router.peers[peer_id].pc.localDescription.sdp
    return [line.split() for line in sdp.splitlines() if line.startswith("a=candidate:")]


RANGE = free_udp_range(8)


class TestPortRange:
    @pytest.fixture
    def sfu_config(self) -> SfuConfig:
        return SfuConfig(udp_port_range=RANGE, interfaces=["127.0.0.1"], allow_private_candidates=True)

    async def test_candidates_use_the_range_and_media_flows(self, router: Router, make_client) -> None:
        a = await make_client("alice")
        b = await make_client("bob")
        await b.wait_frames(a.peer_id, "camera", 5)
        for peer_id in (a.peer_id, b.peer_id):
            for fields in server_candidates(router, peer_id):
                assert fields[4] == "127.0.0.1"
                assert RANGE[0] <= int(fields[5]) <= RANGE[1]


class TestSinglePort:
    @pytest.fixture
    def sfu_config(self) -> SfuConfig:
        port = RANGE[0]
        return SfuConfig(udp_port_range=(port, port), interfaces=["127.0.0.1"], allow_private_candidates=True)

    async def test_every_peer_shares_one_port(self, router: Router, make_client) -> None:
        clients = [await make_client(name) for name in ("alice", "bob", "carol")]
        for me in clients:
            for other in clients:
                if other is not me:
                    await me.wait_frames(other.peer_id, "camera", 5)
        ports = {int(f[5]) for c in clients for f in server_candidates(router, c.peer_id)}
        assert ports == {RANGE[0]}


class TestAnnouncedIp:
    @pytest.fixture
    def sfu_config(self) -> SfuConfig:
        return SfuConfig(announced_ip="203.0.113.7", interfaces=["127.0.0.1"], allow_private_candidates=True)

    async def test_host_candidate_announces_public_ip(self, router: Router, make_client) -> None:
        a = await make_client("alice", video=False, audio=False, join=False)
        await a.join(offer=False)
        from aiortc import VideoStreamTrack

        a.pc.addTrack(VideoStreamTrack())
        await a.send({"type": "offer", "sdp": (await _offer(a)).sdp})
        answer = await a.wait_message("answer")
        hosts = [line.split() for line in answer["sdp"].splitlines() if line.startswith("a=candidate:")]
        assert hosts and all(f[4] == "203.0.113.7" for f in hosts)


async def _offer(client):  # type: ignore[no-untyped-def]
    await client.pc.setLocalDescription(await client.pc.createOffer())
    return client.pc.localDescription


def test_stun_username_routing_key() -> None:
    import struct

    username = b"abcd:wxyz"
    attr = struct.pack("!HH", 0x0006, len(username)) + username + b"\x00" * (-len(username) & 3)
    message = struct.pack("!HHI", 0x0001, len(attr), 0x2112A442) + b"t" * 12 + attr
    assert stun_local_ufrag(message) == "abcd"
    assert stun_local_ufrag(b"\x80" + message[1:]) is None
    assert stun_local_ufrag(message[:10]) is None


def test_config_validation() -> None:
    with pytest.raises(TypeError):
        SfuConfig(udp_port_range=(5000, 4000))
    with pytest.raises(TypeError):
        SfuConfig(nack_history=1000)
    with pytest.raises(TypeError):
        SfuConfig(ice_servers=[{"url": "x"}])


def test_each_media_worker_gets_its_own_ports() -> None:
    """`serve --workers N`: no two workers bind the same port, whatever the range."""
    ranged = SfuConfig(udp_port_range=(40000, 40099))
    slices = [ranged.for_worker(i, 4).udp_port_range for i in range(4)]
    assert slices == [(40000, 40024), (40025, 40049), (40050, 40074), (40075, 40099)]
    single = SfuConfig(udp_port_range=(3478, 3478))
    assert [single.for_worker(i, 2).udp_port_range for i in range(2)] == [(3478, 3478), (3479, 3479)]
    assert SfuConfig().for_worker(1, 2).udp_port_range is None  # an ephemeral port each
    assert ranged.for_worker(0, 1) is ranged
    with pytest.raises(TypeError):
        SfuConfig(udp_port_range=(5000, 5001)).for_worker(0, 3)
