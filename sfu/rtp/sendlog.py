"""What the SFU sent a subscriber, by transport-wide sequence number: the send half of TWCC.

Toward a subscriber the SFU is the sender: each video packet it forwards (and each probe and
retransmission) carries a transport-wide sequence number, shared by every stream of the
subscriber's connection, and the subscriber's browser reports when each one arrived (RTCP
RTPFB FMT=15). The estimator (``gcc.py``) needs, per number, when the packet left and how big
it was: ``SendLog.stamp`` hands out the next number and notes both in a ring, nothing allocated
per packet. Probe packets are tagged with their cluster (``probe_cluster``) so the probe's result
can be read from the same feedback.

Send times are CLOCK_MONOTONIC microseconds: for forwarded packets the ingress time the rewriter
is given (the router's ``time.monotonic``; the packet leaves in that loop turn's ``sendmmsg``, and
a clock read per egress packet costs ~20 % of the packet here), for probes and retransmissions
the time they are stamped.
``_sendlog.pyx`` is the same class in C (``NativeSendLog``), which the C rewriter calls without a
Python frame; this one is its twin for ``PEERLEARN_SFU_NATIVE=0`` and the tests run both.
"""

from __future__ import annotations

import struct
import time
from array import array
from typing import Optional

#: sends remembered: 8 s of a subscriber receiving 1000 packets/s, far more than feedback needs
RING = 8192

_SEQ = struct.Struct("!H")


class SendLog:
    """One subscriber transport's transport-wide sequence numbers and what each one carried."""

    def __init__(self, ext_id: int) -> None:
        #: the transport-cc header extension id negotiated with this subscriber
        self.ext_id = ext_id
        #: the cluster id packets stamped now belong to (-1: not probing)
        self.probe_cluster = -1
        self.next = 0  # unwrapped number the next packet gets
        self._times = array("q", [-1]) * RING
        self._sizes = array("i", [0]) * RING
        self._clusters = array("i", [-1]) * RING
        self._tags = array("q", [-1]) * RING

    def stamp(self, size: int) -> int:
        """The 16-bit number for a packet of ``size`` bytes leaving now (noted in the ring)."""
        return self.record(size, time.monotonic_ns() // 1000)

    def record(self, size: int, sent_us: int) -> int:
        """As ``stamp`` with an explicit send time (tests, replays)."""
        seq = self.next
        self.next = seq + 1
        slot = seq & (RING - 1)
        self._tags[slot] = seq
        self._times[slot] = sent_us
        self._sizes[slot] = size
        self._clusters[slot] = self.probe_cluster
        return seq & 0xFFFF

    def unwrap(self, seq16: int) -> int:
        """The unwrapped number of a 16-bit ``seq16`` reported back (the nearest to what was sent)."""
        delta = (seq16 - self.next) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self.next + delta

    def sent(self, seq: int) -> Optional[tuple[int, int, int]]:
        """(send time us, size, probe cluster) of unwrapped ``seq``; None when not (or no longer) known."""
        slot = seq & (RING - 1)
        if seq < 0 or self._tags[slot] != seq:
            return None
        return self._times[slot], self._sizes[slot], self._clusters[slot]


def restamp(packet: bytes, ext_id: int, log: "SendLog") -> bytes:
    """``packet`` with a fresh transport-wide number in its ``ext_id`` element (a resent copy is
    a new packet on the wire: its feedback must not be read as the original's); unchanged when
    it carries none."""
    if not packet[0] & 0x10 or len(packet) < 16:
        return packet
    start = 12 + (packet[0] & 0x0F) * 4
    if start + 4 > len(packet) or _SEQ.unpack_from(packet, start)[0] != 0xBEDE:
        return packet
    end = min(start + 4 + 4 * _SEQ.unpack_from(packet, start + 2)[0], len(packet))
    i = start + 4
    while i < end:
        b = packet[i]
        if b == 0:
            i += 1
            continue
        if b >> 4 == 15:
            break
        if b >> 4 == ext_id and b & 0x0F == 1 and i + 3 <= end:
            return packet[: i + 1] + _SEQ.pack(log.stamp(len(packet))) + packet[i + 3 :]
        i += 2 + (b & 0x0F)
    return packet
