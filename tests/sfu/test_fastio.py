"""The SFU's packet I/O, native (sfu/transport/_fastio.pyx) and pure Python (sfu/transport/fastio_py.py):
the same cases against both, on real sockets and with real libsrtp sessions."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import Any

import pylibsrtp
import pytest

from sfu.rtp import native
from sfu.transport import fastio, fastio_py
from sfu.transport.media_socket import ArrivalStamp, MediaSocket, open_media_socket

KEY = bytes(range(30))

IMPLS = [pytest.param(fastio_py, id="python")]
try:
    from sfu.transport import _fastio  # type: ignore[attr-defined]

    IMPLS.insert(0, pytest.param(_fastio, id="native"))
except ImportError:  # pragma: no cover - the build always makes it here; CI fails below
    _fastio = None


def test_native_module_is_built() -> None:
    # `pip install -e .` compiles it (setup.py); a silent fallback would hide a broken build
    assert _fastio is not None and fastio.load(True).NATIVE
    assert native.rewriter_class(True).__module__ == "sfu.rtp._rewriter"
    assert native.forwarder_class(True).__module__ == "sfu.rtp._forwarder"


def _sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def _rtp(seq: int, size: int = 200) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, 0x1234) + bytes([seq & 0xFF]) * size


def _rtcp_rr() -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, 0x1234)


@pytest.fixture
def pair() -> Any:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("io", IMPLS)
def test_srtp_round_trip_matches_pylibsrtp(io: Any) -> None:
    tx, rx = _sessions()
    ctx = io.SrtpContext(tx)
    for seq in range(1, 50):
        packet = _rtp(seq)
        protected = ctx.protect(packet)
        assert protected is not None and protected != packet and len(protected) > len(packet)
        assert rx.unprotect(protected) == packet  # what aiortc's own receiver would decrypt
    rtcp = ctx.protect_rtcp(_rtcp_rr())
    assert rx.unprotect_rtcp(rtcp) == _rtcp_rr()


@pytest.mark.parametrize("io", IMPLS)
def test_unprotect_refuses_forged_replayed_and_oversized(io: Any) -> None:
    tx, rx = _sessions()
    ctx = io.SrtpContext(rx)
    protected = tx.protect(_rtp(7))
    assert ctx.unprotect(protected) == _rtp(7)
    assert ctx.unprotect(protected) is None  # replay
    forged = bytearray(tx.protect(_rtp(8)))
    forged[20] ^= 0xFF
    assert ctx.unprotect(bytes(forged)) is None  # not authentic
    assert ctx.unprotect(b"\x80" * 1600) is None  # longer than any packet we handle
    assert ctx.unprotect(tx.protect(_rtp(9))) == _rtp(9)  # the stream goes on


@pytest.mark.parametrize("io", IMPLS)
def test_destination_takes_ip_literals_only(io: Any) -> None:
    assert io.Destination(("127.0.0.1", 5000)).address == ("127.0.0.1", 5000)
    assert io.Destination(("::1", 5000)).address == ("::1", 5000)
    with pytest.raises(ValueError):
        io.Destination(("example.local", 5000))


@pytest.mark.parametrize("io", IMPLS)
def test_batch_sends_in_order_and_receiver_reads_a_batch(io: Any, pair: Any) -> None:
    a, b = pair
    dest = io.Destination(b.getsockname())
    batch = io.SendBatch()
    for i in range(10):
        assert batch.add(b"datagram-%d" % i, dest)
    assert batch.pending == 10
    assert batch.flush(a.fileno()) == 0
    assert batch.pending == 0 and batch.sent == 10
    got = io.Receiver().recv(b.fileno())
    assert [d for d, _ in got] == [b"datagram-%d" % i for i in range(10)]
    assert {addr[:2] for _, addr in got} == {a.getsockname()}
    assert io.Receiver().recv(b.fileno()) == []  # nothing waiting: no block, no error


@pytest.mark.parametrize("io", IMPLS)
def test_batch_is_bounded_and_protects_in_place(io: Any, pair: Any) -> None:
    a, b = pair
    tx, rx = _sessions()
    ctx = io.SrtpContext(tx)
    dest = io.Destination(b.getsockname())
    batch = io.SendBatch()
    for seq in range(batch.capacity):
        assert batch.add_srtp(ctx, _rtp(seq + 1), dest)
    assert not batch.add_srtp(ctx, _rtp(999), dest)  # full: the caller flushes first
    assert batch.flush(a.fileno()) == 0
    received = io.Receiver().recv(b.fileno(), 64)
    assert [rx.unprotect(d) for d, _ in received] == [_rtp(seq + 1) for seq in range(batch.capacity)]


@pytest.mark.parametrize("io", IMPLS)
def test_a_stream_sent_ahead_then_back_is_refused_and_the_refusal_is_named(io: Any) -> None:
    """libsrtp's sender keeps a replay window per SSRC: one packet 20,000 ahead makes every
    later packet of that stream "too old" (the frozen tiles of session 10). The batch names
    the last refused packet so the SFU's view of a stalled subscriber shows it."""
    tx, _ = _sessions()
    ctx = io.SrtpContext(tx)
    dest = io.Destination(("127.0.0.1", 9))
    batch = io.SendBatch()
    assert batch.last_refusal is None
    for seq in (100, 101, 20100, 102):
        batch.add_srtp(ctx, _rtp(seq), dest)
    assert batch.refused == 1
    status, ssrc, seq = batch.last_refusal
    assert (ssrc, seq) == (0x1234, 102)
    assert status == (-1 if io is fastio_py else 10)  # srtp_err_status_replay_old (pylibsrtp gives none)


@pytest.mark.parametrize("io", IMPLS)
def test_drain_returns_what_was_not_sent(io: Any, pair: Any) -> None:
    a, b = pair
    batch = io.SendBatch()
    dest = io.Destination(b.getsockname())
    batch.add(b"one", dest)
    batch.add(b"two", dest)
    assert batch.drain() == [(b"one", b.getsockname()), (b"two", b.getsockname())]
    assert batch.pending == 0


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_media_socket_on_both_loops(loop_kind: str, native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """What aioice sees (connection_made, datagram_received, sendto, close) and the
    SRTP batch leaving at the end of the loop turn, under asyncio and uvloop."""
    io = fastio.load(native)
    monkeypatch.setattr("sfu.transport.fastio.impl", io)

    class Echo(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: list[bytes] = []
            self.lost = asyncio.Event()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.got.append(data)
            self.transport.sendto(b"echo:" + data, addr)

        def connection_lost(self, exc: Any) -> None:
            self.lost.set()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        proto = Echo()
        msock = open_media_socket(loop, proto, "127.0.0.1", 0)
        assert isinstance(msock, MediaSocket) and proto.transport is msock
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2)
        for i in range(100):
            peer.sendto(b"%d" % i, msock.get_extra_info("sockname"))
        for _ in range(200):
            if len(proto.got) == 100:
                break
            await asyncio.sleep(0.01)
        assert proto.got == [b"%d" % i for i in range(100)]
        assert [peer.recvfrom(100)[0] for _ in range(100)] == [b"echo:%d" % i for i in range(100)]
        tx, rx = _sessions()
        ctx, dest = io.SrtpContext(tx), io.Destination(peer.getsockname())
        for seq in range(1, 151):  # more than one batch
            msock.send_srtp(ctx, _rtp(seq), dest)
        await asyncio.sleep(0)  # the turn ends: the batch leaves
        await asyncio.sleep(0.01)
        assert [rx.unprotect(peer.recvfrom(2000)[0]) for _ in range(150)] == [_rtp(s) for s in range(1, 151)]
        assert msock.counters["datagrams_out"] >= 150
        msock.close()
        await asyncio.wait_for(proto.lost.wait(), 2)
        assert msock.is_closing()
        peer.close()

    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(scenario())
    else:
        asyncio.run(scenario())


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_the_kernel_arrival_time_is_published_while_a_datagram_is_delivered(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TWCC feedback reads when a packet reached the kernel, not when a busy SFU got to it."""
    io = fastio.load(native)
    monkeypatch.setattr("sfu.transport.fastio.impl", io)
    stamp = ArrivalStamp()

    class Recorder(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.stamps: list[float] = []
            self.all_in = asyncio.Event()

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.stamps.append(stamp())
            if len(self.stamps) == 20:
                self.all_in.set()

    async def scenario() -> None:
        proto = Recorder()
        msock = open_media_socket(asyncio.get_running_loop(), proto, "127.0.0.1", 0, stamp)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent_from = time.time()
        for i in range(20):
            peer.sendto(b"%d" % i, msock.get_extra_info("sockname"))
        sent_by = time.time()
        await asyncio.wait_for(proto.all_in.wait(), 5)
        if native:  # stamped by the kernel as the datagrams were queued, before we read them
            assert all(sent_from - 0.001 <= at <= sent_by + 0.001 for at in proto.stamps), proto.stamps
        else:  # the Python twin has no kernel stamps: 0.0, the reader stamps itself
            assert proto.stamps == [0.0] * 20
        assert stamp() == 0.0  # outside a delivery
        msock.close()
        peer.close()

    asyncio.run(scenario())


def _rtp_ssrc(seq: int, ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 3000, ssrc) + bytes([seq & 0xFF]) * 100


def _rtp_twcc(seq: int, twcc_seq: int, ext_id: int = 3) -> bytes:
    """A packet carrying a transport-wide sequence number (one-byte header extension)."""
    ext = struct.pack("!HH", 0xBEDE, 1) + bytes([(ext_id << 4) | 1]) + struct.pack("!H", twcc_seq) + b"\x00"
    return struct.pack("!BBHII", 0x90, 96, seq, seq * 3000, 0x1234) + ext + bytes(100)


@pytest.mark.parametrize("io", IMPLS)
def test_ingress_hands_a_registered_peers_srtp_to_its_routes(io: Any, pair: Any) -> None:
    """What ``MediaTransport.receive_rtp`` / ``receive_rtcp`` do, done by the socket's read: a
    known SSRC reaches its forwarder, an unknown one the peer, RTCP the peer; anything else
    (STUN, a packet the context refuses) reaches the protocol exactly as it came."""
    a, b = pair  # a: the SFU's socket, b: one peer
    tx, rx = _sessions()
    known: list[bytes] = []
    unknown: list[bytes] = []
    rtcp: list[bytes] = []
    fallback: list[tuple[bytes, Any]] = []
    routes = {0x1234: known.append}
    ingress = io.Ingress()
    peer = b.getsockname()
    route = io.IngressRoute(io.SrtpContext(rx), routes, unknown.append, rtcp.append)
    ingress.add(peer, route)
    forged = bytearray(tx.protect(_rtp(9)))
    forged[-1] ^= 0xFF
    sent = [
        tx.protect(_rtp(1)),
        tx.protect(_rtp_ssrc(2, 0x9999)),  # an SSRC the peer has no route for yet
        tx.protect_rtcp(_rtcp_rr()),
        b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + bytes(12),  # STUN: the protocol's
        bytes(forged),  # refused by the context: the protocol's path gets it as it came
    ]
    for data in sent:
        b.sendto(data, a.getsockname())
    time.sleep(0.05)
    assert ingress.read(a.fileno(), 64, lambda data, addr: fallback.append((data, addr))) == 5
    assert known == [_rtp(1)]
    assert unknown == [_rtp_ssrc(2, 0x9999)]
    assert rtcp == [_rtcp_rr()]
    assert [d for d, _ in fallback] == [sent[3], bytes(forged)]
    assert all(addr[:2] == peer for _, addr in fallback)
    assert ingress.fast == 3 and route.packets == 2

    # a route added later is used at once (the transport's own dict) ...
    later: list[bytes] = []
    routes[0x9999] = later.append
    b.sendto(tx.protect(_rtp_ssrc(3, 0x9999)), a.getsockname())
    time.sleep(0.05)
    ingress.read(a.fileno(), 64, lambda data, addr: fallback.append((data, addr)))
    assert later == [_rtp_ssrc(3, 0x9999)]
    # ... a stale removal (another route registered since) changes nothing, a real one hands back
    ingress.remove(peer, io.IngressRoute(io.SrtpContext(rx), {}, None, None))
    assert len(ingress) == 1
    ingress.remove(peer, route)
    assert len(ingress) == 0
    b.sendto(tx.protect(_rtp(4)), a.getsockname())
    time.sleep(0.05)
    ingress.read(a.fileno(), 64, lambda data, addr: fallback.append((data, addr)))
    assert len(fallback) == 3 and known == [_rtp(1)]
    with pytest.raises(ValueError):
        ingress.add(("example.local", 5000), route)


@pytest.mark.parametrize("io", IMPLS)
def test_ingress_routes_each_source_in_runs_and_follows_a_new_registration(io: Any, pair: Any) -> None:
    """Datagrams come in runs from one peer (the native read remembers the last source): runs from
    two peers, interleaved, each reach their own route, and a peer registered again (a rejoin
    from the same address) is routed to its new route from the next datagram on."""
    a, b = pair
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 0))
    tx, rx = _sessions()
    tx2, rx2 = _sessions()
    got: dict[str, list[bytes]] = {"b": [], "c": [], "b2": []}
    ingress = io.Ingress()
    ingress.add(b.getsockname(), io.IngressRoute(io.SrtpContext(rx), {0x1234: got["b"].append}, None, None))
    ingress.add(c.getsockname(), io.IngressRoute(io.SrtpContext(rx2), {0x1234: got["c"].append}, None, None))
    order = ["b", "b", "b", "c", "c", "b", "c", "c", "c", "b"]
    for seq, who in enumerate(order):
        (b if who == "b" else c).sendto((tx if who == "b" else tx2).protect(_rtp(seq)), a.getsockname())
    time.sleep(0.05)
    assert ingress.read(a.fileno(), 64, lambda data, addr: None) == len(order)
    assert got["b"] == [_rtp(s) for s, who in enumerate(order) if who == "b"]
    assert got["c"] == [_rtp(s) for s, who in enumerate(order) if who == "c"]
    tx3, rx3 = _sessions()
    ingress.add(b.getsockname(), io.IngressRoute(io.SrtpContext(rx3), {0x1234: got["b2"].append}, None, None))
    b.sendto(tx3.protect(_rtp(50)), a.getsockname())
    time.sleep(0.05)
    ingress.read(a.fileno(), 64, lambda data, addr: None)
    assert got["b2"] == [_rtp(50)] and len(got["b"]) == 5
    c.close()


@pytest.mark.parametrize("io", IMPLS)
def test_ingress_survives_a_failing_handler(io: Any, pair: Any) -> None:
    a, b = pair
    tx, rx = _sessions()
    got: list[bytes] = []

    def broken(_data: bytes) -> None:
        raise RuntimeError("boom")

    ingress = io.Ingress()
    ingress.add(b.getsockname(), io.IngressRoute(io.SrtpContext(rx), {0x1234: broken}, got.append, got.append))
    b.sendto(tx.protect(_rtp(1)), a.getsockname())
    b.sendto(tx.protect_rtcp(_rtcp_rr()), a.getsockname())
    time.sleep(0.05)
    assert ingress.read(a.fileno(), 64, lambda data, addr: None) == 2
    assert got == [_rtcp_rr()]


@pytest.mark.parametrize("c_path", [True, False], ids=["native", "python"])
def test_ingress_notes_each_packets_twcc_arrival_with_the_kernels_time(c_path: bool, pair: Any) -> None:
    """TWCC feedback from the direct path: every packet's transport-wide number is in the log,
    stamped when it reached the kernel (native), not when a busy SFU read it; an arrival log
    attached after registration (transport-cc negotiated later) is used from then on."""
    io = fastio.load(c_path)
    a, b = pair
    a.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS, as open_media_socket does
    tx, rx = _sessions()
    forwarded: list[bytes] = []
    ingress = io.Ingress(True)
    route = io.IngressRoute(io.SrtpContext(rx), {0x1234: forwarded.append}, None, None)
    ingress.add(b.getsockname(), route)
    b.sendto(tx.protect(_rtp_twcc(1, 100)), a.getsockname())
    time.sleep(0.02)
    ingress.read(a.fileno(), 64, lambda data, addr: None)
    log = native.arrival_log_class(c_path)(3, lambda: None)
    route.arrivals = log
    sent_from = time.time()
    for i in range(2, 12):
        b.sendto(tx.protect(_rtp_twcc(i, 99 + i)), a.getsockname())
    sent_by = time.time()
    time.sleep(0.15)  # read well after they arrived
    read_at = time.time()
    ingress.read(a.fileno(), 64, lambda data, addr: None)
    assert len(forwarded) == 11 and forwarded[-1] == _rtp_twcc(11, 110)
    assert log.highest == 110 and log.arrival(100) == -1  # before the log was attached
    arrivals = [log.arrival(seq) / 1e6 for seq in range(101, 111)]
    if c_path:
        assert all(sent_from - 0.001 <= at <= sent_by + 0.001 for at in arrivals), arrivals
    else:  # the Python twin has no kernel stamps: the time of reading
        assert all(at >= read_at - 0.001 for at in arrivals), arrivals


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_a_readable_socket_is_drained_once_per_read_interval(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupt coalescing: datagrams arriving within the read interval are read together
    (one wakeup, batched reads), and none is lost or reordered; closing cancels a pending read."""
    monkeypatch.setattr("sfu.transport.fastio.impl", fastio.load(native))
    monkeypatch.setenv("PEERLEARN_SFU_READ_INTERVAL_MS", "50")

    class Sink(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: list[bytes] = []
            self.all_in = asyncio.Event()
            self.lost = asyncio.Event()

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.got.append(data)
            if len(self.got) == 100:
                self.all_in.set()

        def connection_lost(self, exc: Any) -> None:
            self.lost.set()

    async def scenario() -> None:
        proto = Sink()
        msock = open_media_socket(asyncio.get_running_loop(), proto, "127.0.0.1", 0)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(100):
            peer.sendto(b"%d" % i, msock.get_extra_info("sockname"))
        await asyncio.wait_for(proto.all_in.wait(), 5)
        assert proto.got == [b"%d" % i for i in range(100)]
        # 64 + 36: the first wakeup waited for the rest instead of reading one datagram
        assert msock.counters["recv_calls"] <= 3, msock.counters
        peer.sendto(b"late", msock.get_extra_info("sockname"))
        await asyncio.sleep(0.01)  # readable: a read is pending
        msock.close()
        await asyncio.wait_for(proto.lost.wait(), 2)
        await asyncio.sleep(0.08)  # the cancelled read never runs on the closed socket
        assert proto.got[-1] == b"99"
        peer.close()

    asyncio.run(scenario())
