"""Media through the real coturn, relay-only, with ephemeral credentials."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from string import Template

import pytest
from aiortc import RTCIceServer

from sfu import SfuConfig
from sfu.transport.turn import turn_credentials
from sfu_client import Client

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-turn-secret"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stun_ready(port: int, timeout: float = 10.0) -> None:
    """Resolve once coturn answers a STUN binding request on ``port``."""
    loop = asyncio.get_running_loop()
    answered = loop.create_future()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not answered.done():
                answered.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=("127.0.0.1", port))
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)
    try:

        async def probe() -> None:
            while True:
                transport.sendto(request)
                try:
                    await asyncio.wait_for(asyncio.shield(answered), 0.2)
                    return
                except asyncio.TimeoutError:
                    continue

        await asyncio.wait_for(probe(), timeout)
    finally:
        transport.close()


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 5)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[int]:
    binary = shutil.which("turnserver") or ("/usr/bin/turnserver" if os.path.exists("/usr/bin/turnserver") else None)
    if binary is None:
        pytest.fail(
            "coturn's turnserver is not installed (apt-get install coturn): the TURN test needs the real server"
        )
    # The port is picked free and released before coturn binds it (and coturn also binds port + 1 and a relay
    # range), so on a busy machine another socket can take one of them in between: coturn then never answers.
    # Start again on fresh ports rather than fail on a race that says nothing about our TURN setup.
    failures: list[str] = []
    for attempt in range(3):
        port = free_udp_port()
        base = 50000 + (port % 1000) * 10
        workdir = tmp_path / f"try{attempt}"
        workdir.mkdir()
        conf = Template((ROOT / "turn" / "coturn-test.conf.template").read_text()).substitute(
            port=port, min_port=base, max_port=base + 9, secret=SECRET, workdir=workdir
        )
        (workdir / "turnserver.conf").write_text(conf)
        log = (workdir / "turnserver.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            binary, "-c", str(workdir / "turnserver.conf"), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            await stun_ready(port)
        except asyncio.TimeoutError:
            await stop(process)
            log.close()
            tail = (workdir / "turnserver.log").read_text(errors="replace").splitlines()[-15:]
            failures.append(f"port {port} (exit {process.returncode}):\n" + "\n".join(tail))
            continue
        try:
            yield port
        finally:
            await stop(process)
            log.close()
        return
    pytest.fail("coturn never answered STUN in 3 starts:\n" + "\n\n".join(failures))


@pytest.fixture
def sfu_config() -> SfuConfig:
    # the SFU gathers on loopback only: coturn's relay reaches it there
    return SfuConfig(interfaces=["127.0.0.1"], allow_private_candidates=True)


async def test_relay_only_client_through_coturn(router, coturn: int, make_client) -> None:
    username, password = turn_credentials(SECRET, "alice", ttl=600)
    turn = RTCIceServer(urls=f"turn:127.0.0.1:{coturn}?transport=udp", username=username, credential=password)
    a: Client = await make_client("alice", ice_servers=[turn], ice_policy="relay")
    candidates = [line for line in a.pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")]
    assert candidates and all(" typ relay" in line for line in candidates)
    b: Client = await make_client("bob")
    await b.wait_frames(a.peer_id, "camera", 10)
    await a.wait_frames(b.peer_id, "camera", 10)
    await a.wait_frames(b.peer_id, "mic", 10)
    server_candidates = [
        line for line in router.peers[a.peer_id].pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")
    ]
    assert server_candidates and all(" 127.0.0.1 " in line for line in server_candidates)


@pytest.mark.parametrize("tamper", ["password", "expired"])
async def test_bad_credentials_get_no_relay(coturn: int, tamper: str) -> None:
    from aiortc import RTCConfiguration, RTCIceTransportPolicy, RTCPeerConnection, VideoStreamTrack

    if tamper == "expired":
        username, password = turn_credentials(SECRET, "alice", ttl=10, now=1_000_000)
    else:
        username, password = turn_credentials(SECRET, "alice", ttl=600)
        password = password[:-4] + "AAA="
    pc = RTCPeerConnection(
        RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=f"turn:127.0.0.1:{coturn}?transport=udp", username=username, credential=password)
            ],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    )
    pc.addTrack(VideoStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    assert "typ relay" not in pc.localDescription.sdp
    await pc.close()


def test_production_config_refuses_private_ranges() -> None:
    conf = (ROOT / "turn" / "coturn.conf").read_text()
    lines = [line.strip() for line in conf.splitlines() if line.strip() and not line.startswith("#")]
    assert "use-auth-secret" in lines and "fingerprint" in lines and "no-multicast-peers" in lines
    assert any(line.startswith("realm=") for line in lines)
    assert any(line.startswith("user-quota=") for line in lines) and any(
        line.startswith("total-quota=") for line in lines
    )
    assert "allow-loopback-peers" not in lines
    denied = [line.split("=", 1)[1] for line in lines if line.startswith("denied-peer-ip=")]
    assert all("/" not in d for d in denied), "coturn takes IP or IP-IP, not CIDR"
    import ipaddress

    def covered(ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        for d in denied:
            lo, _, hi = d.partition("-")
            lo_ip, hi_ip = ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo)
            if lo_ip.version == address.version and lo_ip <= address <= hi_ip:
                return True
        return False

    for ip in [
        "127.0.0.1",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "192.0.0.8",
        "198.18.0.1",
        "::1",
        "fc00::1",
        "fe80::1",
    ]:
        assert covered(ip), ip
    for ip in ["8.8.8.8", "172.32.0.1", "2001:4860::8888"]:
        assert not covered(ip), ip
