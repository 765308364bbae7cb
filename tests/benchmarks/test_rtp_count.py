"""The load generator's subscribers count the same with the C counter (benchmarks/_rtp_count.pyx)
and with its Python twin: same datagrams on a real socket, same counters, samples and routing."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest

from benchmarks import replay_participant
from benchmarks.replay_participant import CountingMux, InStream

VIDEO, AUDIO, STRANGER = 0x1111, 0x2222, 0x3333


def test_the_counter_is_built() -> None:
    # setup.py compiles it with the SFU's native path; a silent fallback would hide a broken build
    assert replay_participant._rtp_count is not None


class Owner:
    """What a participant does for its mux: announce streams, decrypt samples."""

    def __init__(self) -> None:
        self.streams: dict[int, InStream] = {}
        self.samples: list[int] = []
        self.arrivals: list[float] = []

    def new_stream(self, ssrc: int, data: bytes) -> InStream:
        st = InStream(ssrc, "video" if ssrc == VIDEO else "audio", "pub", self, None)  # type: ignore[arg-type]
        seq = (data[2] << 8) | data[3]
        st.base = seq
        st.highest = seq - 1
        self.streams[ssrc] = st
        return st

    def decrypt_sample(self, data: bytes, addr: Any, arrival: Any = None) -> None:
        seq = (data[2] << 8) | data[3]
        self.samples.append(seq)
        if arrival is not None:
            self.arrivals.append(arrival)
        st = self.streams[int.from_bytes(data[8:12], "big")]
        if data[1] & 0x80:  # the first frame completes at its marker
            st.first_frame = 1.0


class Routed:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)


def rtp(ssrc: int, seq: int, *, marker: bool = False, size: int = 100) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, seq * 3000, ssrc) + b"x" * size


def traffic() -> list[bytes]:
    out = []
    seq = 65530  # wraps
    for frame in range(12):
        for part in range(3):
            out.append(rtp(VIDEO, seq, marker=part == 2, size=200 + frame))
            seq += 1
        if frame == 4:
            seq += 2  # two lost
        out.append(rtp(AUDIO, 100 + frame, marker=True, size=40))
    out.insert(10, out[8])  # a duplicate, late
    out.append(rtp(STRANGER, 7))  # nobody announced it
    out.append(struct.pack("!BBH", 0x80, 200, 6) + b"\x00" * 24)  # RTCP: routed
    out.append(b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"z" * 12)  # STUN-like: routed
    out.append(b"\x17\xfe\xfd" + b"d" * 30)  # DTLS-like: routed
    return out


def run(
    native: bool, batch: int, arrivals: list[float] | None = None
) -> tuple[dict[int, tuple[int, int, int, int]], list[int], list[bytes], int]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    if arrivals is not None:
        rx.setsockopt(socket.SOL_SOCKET, replay_participant.SO_TIMESTAMPNS, 1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        mux = CountingMux(sample_mask=3, native=native)
        assert mux.native == native
        owner, routed = Owner(), Routed()
        mux.announced = {VIDEO: owner, AUDIO: owner}  # type: ignore[dict-item]
        name = tx.getsockname()
        mux._by_addr[(name[0], name[1])] = routed
        read = mux.reader(rx.fileno(), batch)
        for data in traffic():
            tx.sendto(data, rx.getsockname())
        read()
        read()  # nothing left: counts nothing more
        counters = {ssrc: st.snapshot() for ssrc, st in owner.streams.items()}
        if arrivals is not None:
            arrivals.extend(owner.arrivals)
        return counters, owner.samples, routed.got, mux.unknown
    finally:
        rx.close()
        tx.close()


@pytest.mark.parametrize("batch", [64, 5])
def test_native_counter_matches_the_python_loop(batch: int) -> None:
    python = run(False, batch)
    native = run(True, batch)
    assert native == python
    counters, samples, routed, unknown = native
    video = counters[VIDEO]
    assert video[0] == 37 and video[3] == 12  # packets (36 + the duplicate), frames
    assert video[2] == 65530 + 38 - 1  # extended highest: 36 sent + 2 lost, across the wrap
    assert counters[AUDIO][0] == 12
    assert samples[:3] == [65530, 65531, 65532]  # all until the first frame, then 1 in 4
    assert len(samples) < 15
    assert len(routed) == 3 and unknown == 1


def test_samples_carry_the_kernels_arrival_time() -> None:
    # a socket read once per tick still times its samples: the kernel stamped them on arrival
    before = time.monotonic()
    arrivals: list[float] = []
    _, samples, _, _ = run(True, 64, arrivals)
    after = time.monotonic()
    assert len(arrivals) == len(samples) > 0
    assert all(before - 0.005 <= t <= after + 0.005 for t in arrivals)
    assert arrivals == sorted(arrivals)
