"""Whether an RTP payload starts a key frame, per codec, without decoding it.

The forwarder asks this of every video packet: a subscriber joining, or switching simulcast
layer, starts on a key frame. The native forwarder recognises ``vp8_is_keyframe`` and runs
its C twin instead (``sfu/rtp/_forwarder.pyx``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional


def vp8_is_keyframe(p: bytes) -> bool:
    """True when a VP8 RTP payload (RFC 7741) starts a key frame."""
    n = len(p)
    if n < 1:
        return False
    b = p[0]
    if not b & 0x10 or b & 0x07:  # S bit set and partition index 0
        return False
    i = 1
    if b & 0x80:
        if n < 2:
            return False
        x = p[1]
        i = 2
        if x & 0x80:  # picture id, 7 or 15 bits
            if i >= n:
                return False
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:  # TL0PICIDX
            i += 1
        if x & 0x30:  # TID / KEYIDX
            i += 1
    return i < n and not p[i] & 0x01


def h264_is_keyframe(p: bytes) -> bool:
    """True when an H.264 RTP payload (RFC 6184) carries SPS or an IDR slice start."""
    n = len(p)
    if n < 2:
        return False
    nal = p[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A
        i = 1
        while i + 2 < n:
            size = (p[i] << 8) | p[i + 1]
            if p[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28:  # FU-A: only its first fragment starts the frame
        return bool(p[1] & 0x80) and p[1] & 0x1F == 5
    return False


def keyframe_detector(codec_name: str) -> Optional[Callable[[bytes], bool]]:
    name = codec_name.upper()
    if name == "VP8":
        return vp8_is_keyframe
    if name == "H264":
        return h264_is_keyframe
    return None
