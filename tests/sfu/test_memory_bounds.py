"""Memory stays bounded under a long stream of packets (issue 12's soak, as tests: sizes, never timings).

The soak (benchmarks/sfu_soak.py) found the Python heap flat under tracemalloc
and the growth in glibc's heap, as free memory: asyncio asked for 256 KiB per
read (sfu/heap.py). These pin both halves: the forwarding path keeps no state
that grows with the number of packets, and with the SFU's small UDP reads and
the engine's fixed mmap threshold the heap levels off.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import random
import socket
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from sfu import Engine, SfuConfig, heap
from sfu.transport import aiortc_bridge as bridge
from sfu.rtp.forwarding import (
    URI_ABS_SEND_TIME,
    URI_MID,
    CallSink,
    ExtensionWriter,
    RtpForwarder,
    RtpRewriter,
    vp8_is_keyframe,
)

VP8_KEY = bytes([0x90, 0x80, 0x05, 0x00])
VP8_DELTA = bytes([0x90, 0x80, 0x06, 0x01])
HISTORY = 1024


def _video_packet(seq: int, ts: int, size: int, key: bool) -> bytes:
    # abs-send-time in a one-byte extension block, like the publishers' packets
    ext = b"\xbe\xde\x00\x01" + bytes([(3 << 4) | 2]) + b"\x01\x02\x03"
    payload = (VP8_KEY if key else VP8_DELTA) + bytes(size)
    return struct.pack("!BBHII", 0x90, 96, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234) + ext + payload


def _fanout(consumers: int) -> tuple[RtpForwarder, list[RtpRewriter]]:
    fwd = RtpForwarder(producer_id="p", kind="video", clock=lambda: 100.0)
    fwd.detectors[96] = vp8_is_keyframe
    rewriters = []
    for i in range(consumers):
        rw = RtpRewriter(
            ssrc=0xAA00 + i,
            rtx_ssrc=0xBB00 + i,
            clock_rate=90000,
            needs_keyframe=True,
            history_size=HISTORY,
            request_keyframe=lambda: None,
        )
        rw.configure(
            pt_map={96: 100},
            rtx_pt=101,
            ext=ExtensionWriter({URI_MID: 1, URI_ABS_SEND_TIME: 3}, "0"),
            sink=CallSink(lambda _p: None),
        )
        rewriters.append(rw)
    fwd.rewriters = rewriters
    return fwd, rewriters


def _stream(fwd: RtpForwarder, start: int, count: int) -> None:
    for seq in range(start, start + count):
        # sizes vary like VP8 packets (full MTU-sized ones and frame tails); a keyframe every 60
        fwd.on_rtp(_video_packet(seq, seq * 3000, 600 + (seq * 37) % 600, key=seq % 60 == 0))


def test_forwarding_keeps_no_state_that_grows_with_packets() -> None:
    """After the NACK histories are full, 5x more packets leave the traced Python heap where it was:
    the only per-packet state is each consumer's fixed ring of HISTORY packets."""
    fwd, rewriters = _fanout(4)
    tracemalloc.start(1)
    try:
        # histories full of packets allocated under tracing: from here on every packet replaces one
        _stream(fwd, 0, 2 * HISTORY)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        _stream(fwd, 2 * HISTORY, 5 * HISTORY)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert all(rw.packets == 7 * HISTORY for rw in rewriters)
    assert all(rw.history is not None and len(rw.history) == HISTORY for rw in rewriters)
    # packet sizes differ, so the ring's content varies by a few KB; 20k packets' worth would be ~18 MB
    assert grown < 64 * 1024, f"forwarding 20480 packets grew the Python heap by {grown} bytes"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc_heap_mb() -> float | None:
    """Bytes glibc's arenas hold (live + free), in MB; None off glibc."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    return float(fn().arena) / 1e6


def _heap_growth(recv_size: int, packets: int = 150_000) -> float:
    """Receive ``packets`` datagrams with ``recvfrom(recv_size)`` (what asyncio's datagram transport
    does per packet) while a NACK-history-like ring keeps one rewritten copy of each for 5120
    packets; the heap's growth in MB over the last two thirds, once the ring turned over many times."""
    # a server has freed some block above 256 KiB by then (glibc mmaps those), which moves glibc's
    # mmap threshold above it: from then on 256 KiB requests are carved out of the heap
    big = bytes(300_000)
    del big
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        dest = b.getsockname()
        rnd = random.Random(1)
        sizes = [rnd.randrange(600, 1200) for _ in range(997)]  # VP8-like: MTU-sized and frame tails
        payloads = [bytes(n) for n in sizes]
        ring: list[list[bytes | None]] = [[None] * 512 for _ in range(10)]
        marks = []
        for i in range(packets):
            a.sendto(payloads[i % 997], dest)
            data, _ = b.recvfrom(recv_size)
            ring[i % 10][(i // 10) % 512] = b"".join((data[:12], data[12:]))
            if i in (packets // 3, packets - 1):
                marks.append(_glibc_heap_mb() or 0.0)
        return marks[1] - marks[0]
    finally:
        a.close()
        b.close()


def _growth_in_fresh_process(recv_size: int, *, pin: bool) -> float:
    """``_heap_growth`` in a new interpreter: glibc's mmap threshold is process-wide state (moved
    by any big free, fixed by the engine), so each case starts from the same heap."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_memory_bounds as t; "
        "from sfu import heap; pin = sys.argv[3] == '1'; pin and heap.pin_mmap_threshold(); "
        "print(t._heap_growth(int(sys.argv[2])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(recv_size), "1" if pin else "0"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc_heap_mb() is None, reason="glibc's mallinfo2 only")
def test_receive_buffers_keep_the_c_heap_from_growing() -> None:
    """The soak's leak: 256 KiB asked of the allocator per read (asyncio's default), shrunk to the
    datagram, while ring-buffered packets split every free hole: the heap grows without end. The SFU's
    sockets read into RECV_MAX_SIZE, and the engine's fixed mmap threshold sends the remaining big
    reads (websockets, HTTP) to their own mappings: either way the heap levels off."""
    default = _growth_in_fresh_process(256 * 1024, pin=False)
    if default < 2.5:
        pytest.skip(f"this allocator does not fragment on the scenario (default grew {default:.1f} MB)")
    small_reads = _growth_in_fresh_process(bridge.RECV_MAX_SIZE, pin=False)
    pinned = _growth_in_fresh_process(256 * 1024, pin=True)
    assert small_reads < 1.5, (
        f"heap grew {small_reads:.1f} MB with {bridge.RECV_MAX_SIZE}-byte reads ({default:.1f} MB with 256 KiB)"
    )
    assert pinned < 1.5, (
        f"heap grew {pinned:.1f} MB with 256 KiB reads and the threshold fixed ({default:.1f} MB unfixed)"
    )


def test_engine_fixes_the_mmap_threshold() -> None:
    if _glibc_heap_mb() is None:
        pytest.skip("glibc only")
    Engine(SfuConfig())
    assert heap._pinned


async def test_sfu_udp_sockets_receive_into_a_small_buffer() -> None:
    """tune_socket (every SFU host socket and the shared-port mux) caps asyncio's per-datagram
    receive size; WebRTC datagrams (<= MTU) still arrive whole."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    try:
        assert bridge.tune_socket(transport)
        assert transport.max_size == bridge.RECV_MAX_SIZE  # type: ignore[attr-defined]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for n in (1200, 1500, 4000):
                s.sendto(bytes(range(256)) * (n // 256) + bytes(n % 256), transport.get_extra_info("sockname"))
                assert len(await asyncio.wait_for(got.get(), 5)) == n
    finally:
        transport.close()
