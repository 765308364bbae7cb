"""VP8 payload parsing shared by the live path and the recorder (RFC 7741, RFC 6386).
No decoding: the payload descriptor's length and a keyframe's dimensions."""

from __future__ import annotations

import struct
from typing import Optional


def vp8_descriptor_length(p: bytes) -> tuple[bool, int, int]:
    """RFC 7741 payload descriptor: (start of partition, partition index, length); length 0 = junk."""
    if not p:
        return False, 0, 0
    b0 = p[0]
    i = 1
    if b0 & 0x80:
        if len(p) < 2:
            return False, 0, 0
        x = p[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(p) <= i:
                return False, 0, 0
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    if len(p) <= i:
        return False, 0, 0
    return bool(b0 & 0x10), b0 & 0x07, i


def vp8_frame_size(frame: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1)."""
    if len(frame) >= 10 and not frame[0] & 1 and frame[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", frame, 6)
        return w & 0x3FFF, h & 0x3FFF
    return None


class Vp8Numbering:
    """One consumer's VP8 picture ids and TL0PICIDX, continuous across the points where it
    starts again on a keyframe (a simulcast layer switch, a resync after a hole).

    Each simulcast layer is its own VP8 stream with its own picture id counter (Chromium
    starts each at random) and its own TL0PICIDX. Forwarded unchanged, a switch makes the
    subscriber's picture id jump, often backwards; Chromium's receiver then takes the
    keyframe (a jump back on a keyframe is allowed) and drops the frames after it as older
    than one it already decoded, or stashes them waiting for references that never come:
    one picture every 3 s, at each keyframe its receiver asks for. So, as SFUs do, the
    first frame after a restart gets the next picture id and TL0PICIDX after the last ones
    forwarded, and the frames after it keep that offset (RFC 7741 section 4.2).

    ``sfu/rtp/_rewriter.pyx`` does the same in C (``_vp8_renumber``)."""

    __slots__ = ("pid_off", "tl0_off", "last_pid", "last_tl0", "restart")

    def __init__(self) -> None:
        self.pid_off = 0
        self.tl0_off = 0
        self.last_pid = -1  # the newest picture id sent, -1: none yet
        self.last_tl0 = -1
        self.restart = True  # the next picture id sets the offsets

    def rewrite(self, payload: bytes) -> bytes:
        """``payload`` with its picture id and TL0PICIDX renumbered (the same object when it
        carries neither)."""
        n = len(payload)
        if n < 3 or not payload[0] & 0x80:
            return payload
        x = payload[1]
        if not x & 0xC0:
            return payload
        out = bytearray(payload)
        i = 2
        if x & 0x80:
            if out[i] & 0x80:
                if n < i + 2:
                    return payload
                mask, pid = 0x7FFF, ((out[i] & 0x7F) << 8) | out[i + 1]
            else:
                mask, pid = 0x7F, out[i] & 0x7F
            if self.restart:
                self.pid_off = (self.last_pid + 1 - pid) & mask if self.last_pid >= 0 else 0
            new = (pid + self.pid_off) & mask
            if mask == 0x7FFF:
                out[i], out[i + 1] = 0x80 | (new >> 8), new & 0xFF
                i += 2
            else:
                out[i] = new
                i += 1
            if self.last_pid < 0 or (new - self.last_pid) & mask <= mask >> 1:
                self.last_pid = new
        if x & 0x40 and i < n:
            tl0 = out[i]
            if self.restart:
                self.tl0_off = (self.last_tl0 + 1 - tl0) & 0xFF if self.last_tl0 >= 0 else 0
            new = (tl0 + self.tl0_off) & 0xFF
            out[i] = new
            if self.last_tl0 < 0 or (new - self.last_tl0) & 0xFF <= 0x7F:
                self.last_tl0 = new
        self.restart = False
        return bytes(out)
