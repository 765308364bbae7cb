"""When each transport-wide sequence number arrived: the per-packet half of TWCC feedback.

Times are CLOCK_REALTIME microseconds: the kernel's arrival stamp of the datagram when the
transport publishes it (``clock``, returning 0.0 when it has none), else the time of reading.

Every RTP packet a publisher sends carries a transport-wide sequence number (when
``transport-cc`` is negotiated); ``ArrivalLog.on_rtp`` finds it and notes the arrival time
in a ring indexed by the (unwrapped) number, nothing allocated per packet. The feedback
builder (``twcc.TwccResponder``) reads the ring on its timer. ``_arrivals.pyx`` is the same
class in C (``NativeArrivalLog``), which the SFU runs; this one is its twin for
``PEERLEARN_SFU_NATIVE=0`` and the tests run both.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Optional

from .header_extensions import find_extension

#: arrivals remembered: 8 s of a 1000-packet/s publisher, far more than one feedback interval
RING = 8192


class ArrivalLog:
    """One publisher transport's packet arrivals (realtime microseconds)."""

    def __init__(self, ext_id: int, on_first: Callable[[], None], clock: Optional[Callable[[], float]] = None) -> None:
        self.ext_id = ext_id
        self._clock = clock
        #: the SSRC of the first packet (feedback names one media source, which senders ignore)
        self.media_ssrc = 0
        self.highest = -1  # unwrapped; -1 before the first packet
        self.next = 0  # the first sequence number the next feedback reports
        self.pending = False  # something arrived since the last feedback
        self._on_first = on_first
        self._times = array("q", [-1]) * RING
        self._tags = array("q", [-1]) * RING  # which unwrapped number each slot holds

    def on_rtp(self, data: bytes) -> None:
        """Note ``data``'s arrival if it carries our extension (one-byte or two-byte form)."""
        b0 = data[0]
        if not b0 & 0x10:
            return
        i = 12 + (b0 & 0x0F) * 4
        n = len(data)
        if i + 4 > n:
            return
        end = min(i + 4 + ((data[i + 2] << 8) | data[i + 3]) * 4, n)
        value = find_extension(data, i + 4, end, (data[i] << 8) | data[i + 1], self.ext_id)
        if value is not None and len(value) == 2:
            ssrc = (data[8] << 24) | (data[9] << 16) | (data[10] << 8) | data[11]
            at = self._clock() if self._clock is not None else 0.0
            self.record((value[0] << 8) | value[1], int(at * 1e6) if at > 0 else time.time_ns() // 1000, ssrc)

    def record(self, seq: int, arrival_us: int, ssrc: int = 0) -> None:
        """Transport-wide number ``seq`` (16 bits) arrived at ``arrival_us``."""
        if self.highest < 0:
            self.highest = self.next = seq
            self.media_ssrc = ssrc
        else:
            delta = (seq - self.highest) & 0xFFFF
            if delta >= 0x8000:
                delta -= 0x10000
            seq = self.highest + delta
            if seq < self.next:
                return  # reported as lost already (a late reordering)
            if seq > self.highest:
                self.highest = seq
        slot = seq & (RING - 1)
        self._tags[slot] = seq
        self._times[slot] = arrival_us
        if not self.pending:
            self.pending = True
            self._on_first()

    def arrival(self, seq: int) -> int:
        """When unwrapped number ``seq`` arrived; -1: not (or no longer) known."""
        slot = seq & (RING - 1)
        return self._times[slot] if self._tags[slot] == seq else -1

    def span(self, start: int, stop: int) -> list[Optional[int]]:
        """Arrivals of unwrapped numbers ``start`` .. ``stop - 1`` (None: not known)."""
        out: list[Optional[int]] = []
        for seq in range(start, stop):
            slot = seq & (RING - 1)
            out.append(self._times[slot] if self._tags[slot] == seq else None)
        return out

    def advance(self, start: int) -> None:
        """Feedback covered everything before ``start``."""
        self.next = start
        self.pending = start <= self.highest
