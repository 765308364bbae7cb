"""Decoding one transport-wide feedback message (RTPFB FMT=15), the Python twin of
``_twcc_decode.pyx``: a subscriber's browser sends one every 50-100 ms with up to hundreds
of packet statuses, so the SFU decodes it in C (``native.decode_feedback``); this one is
what runs without the native build (``PEERLEARN_SFU_NATIVE=0``), and both must agree.

``decode_feedback`` returns a plain tuple ``(sender_ssrc, media_ssrc, base_seq,
reference_time, feedback_count, arrivals)``: ``arrivals`` per packet from ``base_seq``, in
microseconds after the reference time, ``None`` for a packet not received.
``twcc.parse_feedback`` wraps it in a ``TwccFeedback``.
"""

from __future__ import annotations

import struct
from typing import Optional

DELTA_TICK_US = 250  # receive delta unit
RLE_MAX = 0x1FFF

Decoded = tuple[int, int, int, int, int, tuple[Optional[int], ...]]


def decode_feedback(data: bytes) -> Decoded:
    """Decode one RTPFB FMT=15 message (raises ValueError when malformed)."""
    if len(data) < 20 or data[1] != 205 or data[0] & 0x1F != 15:
        raise ValueError("not a transport-wide feedback message")
    end = (struct.unpack_from("!H", data, 2)[0] + 1) * 4
    if end > len(data):
        raise ValueError("truncated")
    if data[0] & 0x20:
        end -= data[end - 1]
    sender, media, base, count, ref_fb = struct.unpack_from("!IIHHI", data, 4)
    symbols: list[int] = []
    i = 20
    while len(symbols) < count:
        if i + 2 > end:
            raise ValueError("truncated status chunks")
        (chunk,) = struct.unpack_from("!H", data, i)
        i += 2
        left = count - len(symbols)
        if not chunk & 0x8000:
            symbols += [(chunk >> 13) & 3] * min(chunk & RLE_MAX, left)
        elif not chunk & 0x4000:
            symbols += [(chunk >> (13 - k)) & 1 for k in range(min(14, left))]
        else:
            symbols += [(chunk >> (12 - 2 * k)) & 3 for k in range(min(7, left))]
    now = 0
    arrivals: list[Optional[int]] = []
    for sym in symbols:
        if sym == 0:
            arrivals.append(None)
            continue
        if sym == 1:
            if i + 1 > end:
                raise ValueError("truncated deltas")
            ticks = data[i]
            i += 1
        elif sym == 2:
            if i + 2 > end:
                raise ValueError("truncated deltas")
            (ticks,) = struct.unpack_from("!h", data, i)
            i += 2
        else:
            raise ValueError("reserved status symbol")
        now += ticks * DELTA_TICK_US
        arrivals.append(now)
    return sender, media, base, ref_fb >> 8, ref_fb & 0xFF, tuple(arrivals)
