"""RTP header extensions (RFC 8285) on the hot path: reading one out of a packet, and
``ExtensionWriter``, the block a rewriter writes for its subscriber (its negotiated ids, its own
MID, abs-send-time, audio level, the transport-wide sequence number), precomputed per consumer.
"""

from __future__ import annotations

import struct
from typing import Optional

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

_SEQ = struct.Struct("!H")
_U32 = struct.Struct("!I")
#: one-byte header extension block headers, indexed by length in words
_EXT_HEADERS = [b"\xbe\xde" + _SEQ.pack(words) for words in range(256)]
_PADS = [b"", b"\x00", b"\x00\x00", b"\x00\x00\x00"]


def parse_extensions(data: bytes, start: int, end: int, profile: int) -> dict[int, bytes]:
    """All header extension elements of a block (one-byte or two-byte form)."""
    out: dict[int, bytes] = {}
    i = start
    if profile == 0xBEDE:
        while i < end:
            b = data[i]
            if b == 0:
                i += 1
                continue
            eid = b >> 4
            if eid == 15:
                break
            length = (b & 0x0F) + 1
            out[eid] = data[i + 1 : i + 1 + length]
            i += 1 + length
    elif profile & 0xFFF0 == 0x1000:
        while i + 1 < end:
            eid = data[i]
            if eid == 0:
                i += 1
                continue
            length = data[i + 1]
            out[eid] = data[i + 2 : i + 2 + length]
            i += 2 + length
    return out


def find_extension(data: bytes, start: int, end: int, profile: int, want: int) -> Optional[bytes]:
    """One element's value without building a dict (audio level, every packet)."""
    if profile == 0xBEDE:
        i = start
        while i < end:
            b = data[i]
            if b == 0:
                i += 1
                continue
            eid = b >> 4
            if eid == 15:
                return None
            length = (b & 0x0F) + 1
            if eid == want:
                return data[i + 1 : i + 1 + length]
            i += 1 + length
        return None
    return parse_extensions(data, start, end, profile).get(want)


def abs_send_time(now: float) -> bytes:
    """The 24-bit 6.18 fixed point abs-send-time value for ``now`` (seconds)."""
    return _U32.pack(int(now * 262144.0) & 0xFFFFFF)[1:]


class ExtensionWriter:
    """Builds one consumer's header extension block from precomputed parts."""

    def __init__(self, ids: dict[str, int], mid: Optional[str]) -> None:
        static = b""
        mid_id = ids.get(URI_MID)
        if mid_id and 0 < mid_id < 15 and mid:
            raw = mid.encode("ascii", "replace")[:16]
            static = bytes([(mid_id << 4) | (len(raw) - 1)]) + raw
        self.static = static
        abs_id = ids.get(URI_ABS_SEND_TIME)
        self.abs_hdr = bytes([(abs_id << 4) | 2]) if abs_id and 0 < abs_id < 15 else None
        level_id = ids.get(URI_AUDIO_LEVEL)
        self.level_hdr = bytes([level_id << 4]) if level_id and 0 < level_id < 15 else None
        self.wants_abs = self.abs_hdr is not None
        twcc_id = ids.get(URI_TRANSPORT_CC)
        #: the transport-wide sequence number's element header (None: not negotiated)
        self.twcc_id = twcc_id if twcc_id and 0 < twcc_id < 15 else 0
        self.twcc_hdr = bytes([(self.twcc_id << 4) | 1]) if self.twcc_id else None
        # the two per-packet shapes, precomputed: video (abs-send-time only) and audio
        # (level only): block = prefix + value + pad, one join with the header and payload
        self.abs_prefix, self.abs_pad = self._shape(self.abs_hdr, 3)
        self.level_prefix, self.level_pad = self._shape(self.level_hdr, 1)
        # video toward a subscriber with transport-cc: prefix + abs3 + twcc header + seq + pad
        # (without abs-send-time the prefix ends with the twcc header: prefix + seq + pad)
        self.twcc_prefix: Optional[bytes] = None
        self.twcc_pad = b""
        if self.twcc_hdr is not None:
            if self.abs_hdr is not None:
                self.twcc_prefix, self.twcc_pad = self._shape(self.abs_hdr, 3 + 3)
            else:
                self.twcc_prefix, self.twcc_pad = self._shape(self.twcc_hdr, 2)

    def _shape(self, hdr: Optional[bytes], size: int) -> tuple[Optional[bytes], bytes]:
        if hdr is None:
            return None, b""
        n = len(self.static) + 1 + size
        pad = -n & 3
        return _EXT_HEADERS[(n + pad) >> 2] + self.static + hdr, _PADS[pad]

    def block(self, abs3: Optional[bytes], level: Optional[bytes], twseq: Optional[int] = None) -> bytes:
        """The whole block for one packet; ``twseq``: its transport-wide number (written last)."""
        body = self.static
        if abs3 is not None and self.abs_hdr is not None:
            body = body + self.abs_hdr + abs3
        if level is not None and self.level_hdr is not None and len(level) == 1:
            body = body + self.level_hdr + level
        if twseq is not None and self.twcc_hdr is not None:
            body = body + self.twcc_hdr + _SEQ.pack(twseq & 0xFFFF)
        n = len(body)
        if not n:
            return b""
        pad = -n & 3
        return _EXT_HEADERS[(n + pad) >> 2] + body + _PADS[pad]
