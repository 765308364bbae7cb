"""UDP GSO in the SFU's send batch: a subscriber's run of packets leaves as one message, and
every subscriber still gets exactly its own packets, in order, whatever else the batch holds.
Real sockets on loopback; the pure-Python twin (one ``sendto`` each) must deliver the same."""

from __future__ import annotations

import socket
from typing import Any

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
                assert not batch.gso and batch.gso_messages == 0  # turned off, the packets went one by one
            else:
                # per subscriber: [1200, 1200, 500] [1200, 1200, 300] [800] [1200, 90] [90, 90, 90]
                assert batch.gso_messages == 4 * len(subscribers)
                assert batch.gso_segments == 11 * len(subscribers)
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
