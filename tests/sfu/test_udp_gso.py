"""UDP GSO in the SFU's send batch: a subscriber's run of packets leaves as one message, and
every subscriber still gets exactly its own packets, in order, whatever else the batch holds.
Real sockets on loopback; the pure-Python twin (one ``sendto`` each) must deliver the same."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Any, Iterator

import pytest

from sfu.transport import fastio_py

IMPLS = [pytest.param(fastio_py, id="python")]
try:
    from sfu.transport import _fastio  # type: ignore[attr-defined]

    IMPLS.insert(0, pytest.param(_fastio, id="native"))
except ImportError:  # pragma: no cover - test_fastio fails when the build is missing
    pass

SO_NO_CHECK = 11  # asm-generic/socket.h: UDP without checksums, which GSO refuses (EINVAL)


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return s


def _read_all(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(4096))
        except BlockingIOError:
            return out


def _packet(subscriber: int, n: int, size: int) -> bytes:
    return bytes([subscriber, n]) + bytes([n & 0xFF]) * (size - 2)


#: what one subscriber gets in one batch: two frames of full packets and a short last one, then
#: a larger packet after a short one, and a run of equal ones (the GSO groups break where needed)
SIZES = [1200, 1200, 500, 1200, 1200, 300, 800, 1200, 90, 90, 90, 90]


@pytest.mark.parametrize("io", IMPLS)
@pytest.mark.parametrize("gso_refused", [False, True], ids=["gso", "route-refuses-gso"])
def test_every_subscriber_gets_its_own_packets_in_order_from_one_mixed_batch(io: Any, gso_refused: bool) -> None:
    sender = _socket()
    subscribers = [_socket() for _ in range(3)]
    try:
        if gso_refused:
            sender.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        dests = [io.Destination(s.getsockname()) for s in subscribers]
        batch = io.SendBatch()
        expected: list[list[bytes]] = [[] for _ in subscribers]
        for n, size in enumerate(SIZES):
            for k, dest in enumerate(dests):  # interleaved, as a forwarder fans each packet out
                packet = _packet(k, n, size)
                expected[k].append(packet)
                assert batch.add(packet, dest)
        assert batch.flush(sender.fileno()) == 0
        for k, s in enumerate(subscribers):
            assert _read_all(s) == expected[k]
        assert batch.sent == len(SIZES) * len(subscribers) and batch.refused == 0
        if io is not fastio_py:
            if gso_refused:
                # each destination found refused once and marked: its packets went one by one
                assert batch.gso_messages == 0 and batch.gso_refusals == len(subscribers)
                assert all(dest.gso_refused for dest in dests)
            else:
                # per subscriber: [1200, 1200, 500] [1200, 1200, 300] [800] [1200, 90] [90, 90, 90]
                assert batch.gso_messages == 4 * len(subscribers)
                assert batch.gso_segments == 11 * len(subscribers)
    finally:
        sender.close()
        for s in subscribers:
            s.close()


NARROW = "127.0.0.77"  # a loopback address given a route MTU under the segment size


@pytest.fixture
def narrow_route() -> Iterator[str]:
    """A route to ``NARROW`` with a 1,000-byte MTU: a GSO message of 1,200-byte segments is refused
    there (EMSGSIZE), a 1,200-byte datagram alone is fragmented and arrives whole."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to add a route (CI has both)")
    route = ["local", f"{NARROW}/32", "dev", "lo", "table", "local"]
    subprocess.run(["ip", "route", "del", *route], capture_output=True, check=False)
    subprocess.run(["ip", "route", "add", *route, "mtu", "1000"], check=True)
    try:
        yield NARROW
    finally:
        subprocess.run(["ip", "route", "del", *route], check=False)


@pytest.mark.parametrize("io", IMPLS)
def test_one_narrow_route_keeps_gso_for_everyone_else(io: Any, narrow_route: str) -> None:
    """One subscriber behind a path MTU smaller than the packets (a tunnel) gets all its packets,
    in order, one datagram each; the others keep getting theirs as GSO runs, batch after batch."""
    sender = _socket()
    narrow = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    narrow.bind((narrow_route, 0))
    narrow.setblocking(False)
    subscribers = [narrow, _socket(), _socket()]
    try:
        dests = [io.Destination(s.getsockname()) for s in subscribers]
        batch = io.SendBatch()
        for round_ in range(2):
            expected: list[list[bytes]] = [[] for _ in subscribers]
            for n, size in enumerate(SIZES):
                for k, dest in enumerate(dests):
                    packet = _packet(k, n + 20 * round_, size)
                    expected[k].append(packet)
                    assert batch.add(packet, dest)
            assert batch.flush(sender.fileno()) == 0
            for k, s in enumerate(subscribers):
                assert _read_all(s) == expected[k], (round_, k)
        assert batch.refused == 0
        if io is not fastio_py:
            assert dests[0].gso_refused and not dests[1].gso_refused and not dests[2].gso_refused
            assert batch.gso_refusals == 1  # found once, not again in the second batch
            assert batch.gso  # the socket keeps GSO
            # the two others, two batches: [1200, 1200, 500] [1200, 1200, 300] [800] [1200, 90] [90, 90, 90]
            assert batch.gso_messages == 4 * 2 * 2
    finally:
        sender.close()
        for s in subscribers:
            s.close()


@pytest.mark.parametrize("io", IMPLS)
def test_a_batch_sent_with_gso_off_delivers_the_same(io: Any) -> None:
    sender, subscriber = _socket(), _socket()
    try:
        batch = io.SendBatch()
        batch.gso = False
        dest = io.Destination(subscriber.getsockname())
        packets = [_packet(0, n, size) for n, size in enumerate(SIZES)]
        for packet in packets:
            batch.add(packet, dest)
        assert batch.flush(sender.fileno()) == 0
        assert _read_all(subscriber) == packets
        assert batch.gso_messages == 0
    finally:
        sender.close()
        subscriber.close()
