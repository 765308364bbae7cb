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
