"""RTP/RTCP bytes as the load generators see them: offsets, VP8 keyframe starts,
abs-send-time, feedback counts, and one received stream's counters."""

from __future__ import annotations

import time
from typing import Optional


class Wire:
    """Send times of published RTP payloads (two generations, rotated every 2 s)."""

    def __init__(self) -> None:
        self.new: dict[int, float] = {}
        self.old: dict[int, float] = {}
        self.rotated = time.monotonic()

    def sent(self, key: int, now: float) -> None:
        if now - self.rotated > 2.0:
            self.old, self.new, self.rotated = self.new, {}, now
        self.new[key] = now

    def lookup(self, key: int) -> Optional[float]:
        t = self.new.get(key)
        return t if t is not None else self.old.get(key)


def rtp_payload_offset(data: bytes) -> int:
    off = 12 + (data[0] & 0x0F) * 4
    if data[0] & 0x10 and len(data) >= off + 4:
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    return off


def vp8_keyframe_start(p: bytes) -> bool:
    if not p or not p[0] & 0x10 or p[0] & 0x07:
        return False
    i = 1
    if p[0] & 0x80:
        x = p[1]
        i = 2
        if x & 0x80:
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:
            i += 1
        if x & 0x30:
            i += 1
    return i < len(p) and not p[i] & 0x01


def find_abs_send_time(data: bytes, ext_id: int) -> Optional[int]:
    """The 24-bit abs-send-time value of a one-byte-header extension block, if present."""
    if not data[0] & 0x10:
        return None
    off = 12 + (data[0] & 0x0F) * 4
    if data[off : off + 2] != b"\xbe\xde":
        return None
    end = off + 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    i = off + 4
    while i < end:
        b = data[i]
        if b == 0:
            i += 1
            continue
        length = (b & 0x0F) + 1
        if b >> 4 == ext_id and length == 3:
            return (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]
        i += 1 + length
    return None


def count_feedback(data: bytes) -> tuple[int, int]:
    """(NACK, PLI/FIR) messages in a compound RTCP packet."""
    nacks = plis = 0
    pos = 0
    while pos + 4 <= len(data):
        fmt, pt = data[pos] & 0x1F, data[pos + 1]
        if pt == 205 and fmt == 1:
            nacks += 1
        elif pt == 206 and fmt in (1, 4):
            plis += 1
        pos += 4 * (((data[pos + 2] << 8) | data[pos + 3]) + 1)
    return nacks, plis


class Stream:
    """One remote track as one subscriber receives it."""

    __slots__ = (
        "ssrc",
        "kind",
        "publisher",
        "packets",
        "octets",
        "base",
        "highest",
        "frames",
        "first_frame",
        "keyframe_ts",
    )

    def __init__(self, ssrc: int, kind: str, publisher: str) -> None:
        self.ssrc, self.kind, self.publisher = ssrc, kind, publisher
        self.packets = self.octets = self.frames = 0
        self.base = -1
        self.highest = -1  # extended
        self.first_frame: Optional[float] = None
        self.keyframe_ts: Optional[int] = None

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.packets, self.octets, self.highest, self.frames
