"""Probing a subscriber's downlink before switching it up.

A send-side estimate only learns what the link takes from what is sent over it: a subscriber held
on a small layer after congestion shows only that layer's rate, and the estimate may grow past
it by 8 % a second at most (``gcc.py``). So when the tiles want more than the estimate allows, the
SFU sends a short cluster of extra packets (padding-only RTX packets, which carry nothing to
decode; without RTX, copies of the newest packets, which the receiver discards as duplicates) at
a rate above the estimate, reads from the transport-wide feedback
how fast the cluster arrived, and when it got through, lifts the estimate to what it measured,
so the layer switch follows within a few hundred milliseconds. A cluster that does not get
through costs ~20 ms of extra traffic, and the next one waits longer (0.5, 1, 2 s).

``ProbeController`` is pure (times passed in); the subscriber's downlink (``sfu/room/downlink.py``)
sends the clusters it asks for.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .gcc import PacketResult

if TYPE_CHECKING:
    from .forwarding import RtpRewriter

#: a cluster lasts at least this long and holds at least this many packets (longer when the
#: rate is low), sent in this many bursts (the event loop cannot pace finer)
CLUSTER_SECONDS = 0.02
CLUSTER_PACKETS = 8
BURSTS = 4
#: what a probe aims at, relative to the estimate
MIN_FACTOR, MAX_FACTOR = 2.0, 6.0
#: a cluster counts when this many of its packets were reported, and this share of them arrived
MIN_PACKETS = 6
MIN_RECEIVED = 0.8
#: a cluster that arrived slower than this share of its rate found the link's capacity
SUCCESS = 0.85
BACKOFF_START, BACKOFF_MAX = 0.5, 2.0
#: a cluster without feedback after this long is given up (a loaded event loop can take a while)
CLUSTER_TIMEOUT = 2.0
#: padding bytes in one probe packet (the most one RTP padding count can say)
PADDING = 255

_HDR = struct.Struct("!BBHII")


def send_padding(rw: RtpRewriter, count: int) -> int:
    """``count`` padding-only packets on ``rw``'s RTX stream (RFC 4588 SSRC and payload type; no
    payload, so nothing for the subscriber to decode or mistake for a repair), each with its
    transport-wide number; returns how many went out (0 without RTX or transport-cc)."""
    sink, log, rtx_pt = rw.sink, rw.send_log, rw.rtx_pt
    if sink is None or log is None or rtx_pt is None or not rw.ext.twcc_id:
        return 0
    padding = bytes(PADDING - 1) + bytes([PADDING])
    size = 12 + len(rw.ext.block(None, None, 0)) + PADDING
    for _ in range(count):
        seq = rw._rtx_seq
        rw._rtx_seq = (seq + 1) & 0xFFFF
        block = rw.ext.block(None, None, log.stamp(size))
        sink.send(_HDR.pack(0xB0, rtx_pt, seq, rw.last_ts, rw.rtx_ssrc) + block + padding)
    return count


def cluster_shape(rate: int, packet_size: int) -> tuple[int, float]:
    """(packets per burst, seconds between bursts) for a cluster at ``rate`` of packets about
    ``packet_size`` bytes big."""
    packets = max(CLUSTER_PACKETS, math.ceil(rate * CLUSTER_SECONDS / 8 / max(packet_size, 1)))
    per_burst = math.ceil(packets / BURSTS)
    duration = per_burst * BURSTS * max(packet_size, 1) * 8 / max(rate, 1)
    return per_burst, duration / BURSTS


@dataclass
class Cluster:
    """One probe in flight."""

    id: int
    rate: int  # bits per second aimed at
    started: float
    estimate: int  # what the estimate was when it left
    sent: int = 0  # packets
    #: the transport-wide number of its last packet (set when the last burst left)
    last_seq: int = -1
    reported: list[PacketResult] = field(default_factory=list)


def cluster_rates(results: list[PacketResult]) -> Optional[tuple[float, float]]:
    """How fast one cluster's packets left and how fast they arrived (bits per second); None
    when too few were reported to say. Arriving slower than they left means the link is full
    at about the arrival rate; as fast means it took at least the send rate."""
    received = [r for r in results if r.arrival_us is not None]
    if len(results) < MIN_PACKETS or len(received) < MIN_RECEIVED * len(results):
        return None
    by_send = sorted(results, key=lambda r: r.sent_us)
    send_span = max(by_send[-1].sent_us - by_send[0].sent_us, 1000)
    send_rate = (sum(r.size for r in by_send) - by_send[-1].size) * 8 / (send_span / 1e6)
    by_arrival = sorted(received, key=lambda r: r.arrival_us or 0)
    first, last = by_arrival[0].arrival_us or 0, by_arrival[-1].arrival_us or 0
    recv_span = max(last - first, 1000)
    recv_rate = (sum(r.size for r in by_arrival) - by_arrival[0].size) * 8 / (recv_span / 1e6)
    return send_rate, recv_rate


class ProbeController:
    """When to probe one subscriber's downlink, at what rate, and what each probe found."""

    def __init__(self) -> None:
        self.clusters: dict[int, Cluster] = {}
        self.results: list[tuple[float, int, int, float]] = []  # (when, estimate before, aimed at, measured)
        self._next_id = 0
        self._next_at = 0.0
        self._backoff = BACKOFF_START

    def want(self, *, estimate: int, needed: int, now: float) -> Optional[Cluster]:
        """A cluster to send now when ``needed`` (what the tiles ask for, bits per second) is above
        ``estimate`` and no probe is in flight or backing off; None otherwise."""
        for cid, cluster in list(self.clusters.items()):
            if now - cluster.started > CLUSTER_TIMEOUT:
                del self.clusters[cid]  # its feedback never came: the link is worse than hoped
                self._failed(now)
        if needed <= estimate or self.clusters or now < self._next_at:
            return None
        rate = int(min(max(needed * 1.1, MIN_FACTOR * estimate), MAX_FACTOR * estimate))
        cluster = Cluster(self._next_id, rate, now, estimate)
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        self.clusters[cluster.id] = cluster
        return cluster

    def on_results(self, results: list[PacketResult], now: float) -> Optional[float]:
        """Feedback arrived: the highest rate a finished cluster measured, if any (the caller
        lifts the estimate to it when higher). A cluster is read once the feedback has reached
        its last packet (its packets may span several feedback messages)."""
        if not results:
            return None
        for r in results:
            if r.cluster >= 0:
                cluster = self.clusters.get(r.cluster)
                if cluster is not None:
                    cluster.reported.append(r)
        newest = max(r.seq for r in results)
        found: Optional[float] = None
        for cid, cluster in list(self.clusters.items()):
            if cluster.last_seq < 0 or newest < cluster.last_seq:
                continue
            del self.clusters[cid]
            rates = cluster_rates(cluster.reported)
            if rates is None:
                self.results.append((now, cluster.estimate, cluster.rate, 0.0))  # mostly lost
                self._failed(now)
                continue
            sent, arrived = rates
            # the event loop paces coarsely: judge the link by what was actually sent
            measured = min(sent, arrived, float(cluster.rate))
            self.results.append((now, cluster.estimate, cluster.rate, measured))
            del self.results[:-50]
            if arrived >= SUCCESS * min(sent, cluster.rate):
                self._next_at = now  # it got through: go on at once if more is still wanted
                self._backoff = BACKOFF_START
            else:
                self._failed(now)
            found = measured if found is None else max(found, measured)
        return found

    def _failed(self, now: float) -> None:
        self._next_at = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
