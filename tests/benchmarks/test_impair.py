"""The impairment relay (benchmarks/impair.py) does to packets what it is told, per direction
and per client (by ICE ufrag): loss, delay without reordering, blackout."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from benchmarks.impair import Impairment, ImpairmentRelay, client_ufrag
from sfu.config import SfuConfig

N = 500


def stun_request(username: str) -> bytes:
    name = username.encode()
    attr = struct.pack("!HH", 0x0006, len(name)) + name + b"\x00" * (-len(name) & 3)
    return struct.pack("!HHI", 0x0001, len(attr), 0x2112A442) + b"x" * 12 + attr


def test_client_ufrag_is_the_senders_half_of_the_stun_username() -> None:
    assert client_ufrag(stun_request("sfuFrag:browserFrag")) == "browserFrag"
    assert client_ufrag(b"\x80" + b"\x00" * 30) is None


async def _exercise() -> dict[str, object]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    relay = ImpairmentRelay(server.getsockname(), seed=7)
    port = await relay.start()
    loop = asyncio.get_running_loop()
    clients = {}
    for name in ("mentor", "learner"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        clients[name] = sock
        sock.sendto(stun_request(f"sfu:{name}-ufrag"), ("127.0.0.1", port))
    relay.impair(ufrag="mentor-ufrag", up=Impairment(loss=0.2, delay=0.05, jitter=0.02))
    await asyncio.sleep(0.05)
    while True:  # the two STUN requests
        try:
            server.recvfrom(2048)
        except BlockingIOError:
            break
    got: dict[str, list[int]] = {"mentor": [], "learner": []}
    first: list[float] = []

    def receive() -> None:  # read as packets arrive, as the SFU does: no kernel buffer overflows
        while True:
            try:
                data, _ = server.recvfrom(2048)
            except BlockingIOError:
                return
            who = data[4:].decode()
            if who == "mentor" and not first:
                first.append(time.monotonic() - sent_at)
            got[who].append(struct.unpack("!I", data[:4])[0])

    loop.add_reader(server.fileno(), receive)
    sent_at = time.monotonic()
    for i in range(N):
        for name, sock in clients.items():
            sock.sendto(struct.pack("!I", i) + name.encode(), ("127.0.0.1", port))
        if i % 10 == 9:
            await asyncio.sleep(0.002)
    await asyncio.sleep(0.3)
    loop.remove_reader(server.fileno())
    first_mentor = first[0] if first else None
    # the downlink: blackout for the learner
    relay.impair(ufrag="learner-ufrag", down=Impairment(blackout=True))
    learner = next(f for f in relay.flows.values() if f.ufrag == "learner-ufrag")
    server.sendto(b"to the learner", learner.sock.getsockname())
    await asyncio.sleep(0.05)
    try:
        clients["learner"].recv(100)
        blacked_out = False
    except BlockingIOError:
        blacked_out = True
    relay.close()
    for sock in (*clients.values(), server):
        sock.close()
    return {"got": got, "first_mentor": first_mentor, "blacked_out": blacked_out, "counts": relay.counts()}


def test_loss_delay_and_blackout_hit_only_the_client_they_were_set_for() -> None:
    out = asyncio.run(_exercise())
    got = out["got"]
    assert isinstance(got, dict)
    assert got["learner"] == list(range(N))  # clean: all of it, in order
    mentor = got["mentor"]
    assert 0.7 * N < len(mentor) < 0.88 * N  # about 20 % lost
    assert mentor == sorted(mentor)  # jitter never reorders
    assert out["first_mentor"] is not None and out["first_mentor"] >= 0.03  # 50 +- 20 ms late
    assert out["blacked_out"]


def test_the_announced_port_follows_the_worker_like_the_media_port() -> None:
    config = SfuConfig(udp_port_range=(40000, 40000), announced_port=41000)
    assert config.for_worker(1, 2).announced_port == 41001
    assert config.for_worker(1, 2).udp_port_range == (40001, 40001)
