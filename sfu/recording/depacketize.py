"""From dumped RTP to frames: unwrap RTX and sequence numbers, reorder, drop
duplicates, depacketize VP8 (RFC 7741) and Opus (RED-wrapped or not), drop incomplete
frames (and video until the next keyframe after a loss). No decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional

from ..rtp import red
from ..rtp.vp8 import vp8_descriptor_length
from .rtp_dump import DumpFile

_SEQ_TS = struct.Struct("!HI")


@dataclass
class _Packet:
    seq: int  # extended
    ts_raw: int
    marker: bool
    pt: int
    payload: bytes
    arrival: float
    ts: int = 0  # extended


def parse_rtp(data: bytes, rtx_apt: dict[int, int]) -> Optional[tuple[int, int, int, bool, bytes]]:
    """(payload type, seq, timestamp, marker, payload); RTX unwrapped; None for junk/padding."""
    n = len(data)
    if n < 12 or data[0] >> 6 != 2:
        return None
    b0, b1 = data[0], data[1]
    pt = b1 & 0x7F
    seq, ts = _SEQ_TS.unpack_from(data, 2)
    off = 12 + (b0 & 0x0F) * 4
    if b0 & 0x10:
        if off + 4 > n:
            return None
        words = struct.unpack_from("!H", data, off + 2)[0]
        off += 4 + 4 * words
    end = n
    if b0 & 0x20:
        end -= data[-1]
    apt = rtx_apt.get(pt)
    if apt is not None:
        if end - off < 3:
            return None
        seq = struct.unpack_from("!H", data, off)[0]
        off += 2
        pt = apt
    if end <= off:
        return None
    return pt, seq, ts, bool(b1 & 0x80), data[off:end]


def packets_of(dump: DumpFile, rtx_apt: dict[int, int]) -> list[_Packet]:
    """Packets in sequence order: extended seq/timestamps, duplicates (RTX repairs) dropped."""
    by_seq: dict[int, _Packet] = {}
    last: Optional[int] = None
    for arrival, data in dump.rtp:
        parsed = parse_rtp(data, rtx_apt)
        if parsed is None:
            continue
        pt, seq, ts, marker, payload = parsed
        if last is None:
            ext = seq
        else:
            ext = last + ((seq - (last & 0xFFFF) + 0x8000) & 0xFFFF) - 0x8000
        if last is None or ext > last:
            last = ext
        if ext not in by_seq:
            by_seq[ext] = _Packet(ext, ts, marker, pt, payload, arrival)
    packets = [by_seq[k] for k in sorted(by_seq)]
    prev_raw = prev_ext = None
    for p in packets:
        if prev_raw is None:
            p.ts = p.ts_raw
        else:
            delta = ((p.ts_raw - prev_raw + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            p.ts = prev_ext + delta  # type: ignore[operator]
        prev_raw, prev_ext = p.ts_raw, p.ts
    return packets


@dataclass
class Frame:
    ts: int  # extended RTP timestamp
    data: bytes
    keyframe: bool
    arrival: float
    time: float = 0.0  # on the participant's wall clock, seconds


@dataclass
class VideoStats:
    frames: int = 0
    dropped: int = 0
    keyframes: int = 0


def vp8_frames(packets: list[_Packet], stats: Optional[VideoStats] = None) -> list[Frame]:
    """Whole VP8 frames from packets in sequence order.

    A frame is kept only if it is complete: first packet starts partition 0
    (S=1, PID=0), sequence numbers are contiguous, its last packet has the
    marker bit. After any loss, frames are dropped until the next keyframe so
    every kept frame decodes cleanly; the output begins on a keyframe.
    """
    stats = stats if stats is not None else VideoStats()
    out: list[Frame] = []
    need_key = True
    cur: Optional[list[bytes]] = None
    cur_ts = 0
    cur_arrival = 0.0
    skip_ts: Optional[int] = None
    prev_seq: Optional[int] = None

    def drop() -> None:
        nonlocal cur, need_key
        if cur is not None:
            stats.dropped += 1
        cur = None
        need_key = True

    for p in packets:
        gap = prev_seq is not None and p.seq != prev_seq + 1
        prev_seq = p.seq
        if cur is not None and (gap or p.ts != cur_ts):
            drop()  # the current frame lost its tail (or its marker)
        elif gap:
            need_key = True  # whole packets (maybe frames) lost between frames
        if skip_ts is not None and p.ts == skip_ts and not gap:
            continue
        skip_ts = None
        start, pid, hl = vp8_descriptor_length(p.payload)
        if hl == 0:
            drop()
            skip_ts = p.ts
            continue
        if cur is None:
            if not (start and pid == 0):
                stats.dropped += 1
                need_key = True
                skip_ts = p.ts  # the head of this frame is missing
                continue
            cur, cur_ts, cur_arrival = [], p.ts, p.arrival
        cur.append(p.payload[hl:])
        if p.marker:
            data = b"".join(cur)
            cur = None
            key = bool(data) and not data[0] & 1
            if need_key and not key:
                stats.dropped += 1
                continue
            need_key = False
            stats.frames += 1
            stats.keyframes += key
            out.append(Frame(cur_ts, data, key, cur_arrival))
    if cur is not None:
        stats.dropped += 1
    return out


def unwrap_red(packets: list[_Packet], red_pts: set[int]) -> tuple[list[_Packet], int]:
    """RED packets (RFC 2198) to the Opus packets they carry, in timestamp order: each primary
    block in its packet's place, and a redundant block where its own packet never arrived
    (a loss on the publisher's uplink the recording need not keep). Returns the packets and
    how many were recovered that way."""
    if not red_pts or not any(p.pt in red_pts for p in packets):
        return packets, 0
    out: list[_Packet] = []
    have: set[int] = set()
    spare: dict[int, _Packet] = {}
    for p in packets:
        if p.pt not in red_pts:
            out.append(p)
            have.add(p.ts)
            continue
        found = red.blocks(p.payload)
        if not found:
            continue
        # Chromium's redundant blocks are the packets just before this one, oldest first
        back = len(found) - 1
        for i, (pt, offset, data) in enumerate(found[:-1]):
            ts = p.ts - offset
            if data and offset and ts not in spare:
                spare[ts] = _Packet(
                    p.seq - (back - i), (p.ts_raw - offset) & 0xFFFFFFFF, False, pt, data, p.arrival, ts
                )
        pt, _, data = found[-1]
        if data:
            out.append(_Packet(p.seq, p.ts_raw, p.marker, pt, data, p.arrival, p.ts))
            have.add(p.ts)
    recovered = [q for ts, q in spare.items() if ts not in have]
    out.extend(recovered)
    out.sort(key=lambda q: (q.ts, q.seq))
    return out, len(recovered)


def opus_duration(payload: bytes) -> int:
    """Samples (48 kHz) in one Opus packet, from its TOC byte (RFC 6716 3.1); 0 if malformed."""
    if not payload:
        return 0
    toc = payload[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        size = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        size = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        size = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(payload) < 2:
            return 0
        count = payload[1] & 0x3F
    return size * count


def retime_opus(packets: list[_Packet]) -> None:
    """Timestamps rebuilt from the packets' own durations (a sender whose RTP clock is not
    48 kHz); a missing sequence number counts as one packet of its neighbour's length."""
    if not packets:
        return
    ts = packets[0].ts
    prev = packets[0]
    for p in packets[1:]:
        step = opus_duration(prev.payload) or 960
        ts += step * max(1, p.seq - prev.seq)
        p.ts = ts
        prev = p


def clock_agrees(packets: list[_Packet], clock_rate: int) -> bool:
    """Does the RTP clock advance at ``clock_rate`` against arrival time (±25 %)?"""
    span = packets[-1].arrival - packets[0].arrival
    if len(packets) < 20 or span < 1.0:
        return True
    rate = (packets[-1].ts - packets[0].ts) / span
    return 0.75 * clock_rate < rate < 1.25 * clock_rate


def opus_frames(packets: list[_Packet]) -> list[Frame]:
    """One Opus packet per RTP packet; lost packets leave a gap in time, never a step back."""
    out: list[Frame] = []
    last_ts: Optional[int] = None
    for p in packets:
        if last_ts is not None and p.ts <= last_ts:
            continue
        last_ts = p.ts
        out.append(Frame(p.ts, p.payload, True, p.arrival))
    return out
