"""One subscriber's downlink: transport-wide congestion control toward a participant (issue 24).

The SFU is the sender of everything a subscriber receives, so it runs the send-side estimate a
browser runs for its own uplink: every video packet toward the subscriber carries a
transport-wide sequence number (stamped in the rewriter, noted in ``log``), the subscriber's
browser reports their arrival (RTPFB FMT=15), ``SendSideEstimate`` turns that into the bitrate
its downlink takes, and the estimate is shared out between the subscriber's video consumers:
the tiles shown tallest first, each the layer its size calls for if what is left allows it.
When the tiles want more than the estimate allows, a probe cluster goes out first
(``ProbeController``) and the consumers switch up once it got through.

A client that did not negotiate transport-cc gets no numbers and ``budget_for`` answers None:
its consumers keep choosing from its receiver reports and REMB (``layers.DownlinkGauge``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Optional

from ..rtp import native, twcc
from ..rtp.header_extensions import URI_TRANSPORT_CC
from ..rtp.gcc import SendSideEstimate, packet_results
from ..rtp.layers import choose_layer
from ..rtp.forwarding import RtpRewriter
from ..rtp.probing import BURSTS, PADDING, Cluster, ProbeController, cluster_shape, send_padding

if TYPE_CHECKING:
    from .consumer import Consumer

logger = logging.getLogger(__name__)

#: what each audio track toward the subscriber is assumed to take (Opus with headers)
AUDIO_BPS = 50_000
#: the allocation is recomputed at most this often unless a consumer is new to it
ALLOCATION_SECONDS = 0.05
#: samples of the estimate kept for stats (one per feedback that changed it by 5 % or more)
TIMELINE = 600


class SubscriberDownlink:
    """Numbering, estimate, probes and shares for one subscriber's video consumers."""

    def __init__(self, consumers: Callable[[], Iterable[Consumer]], clock: Callable[[], float]) -> None:
        self._consumers = consumers
        self._clock = clock
        self.ext_id = 0  # the client's transport-cc id (0: it never offered transport-cc)
        self.mids: set[str] = set()  # video m-sections where the client accepted it
        self.log = native.SendLogs(0)
        self.estimate = SendSideEstimate()
        self.probes = ProbeController()
        self.feedbacks = 0
        self.malformed = 0
        #: (seconds on the SFU's clock, estimate bits/s): what the benchmarks plot
        self.timeline: list[tuple[float, int]] = []
        self._reference: Optional[int] = None
        self._reference_base = 0
        self._budgets: dict[str, int] = {}
        self._needed = 0
        self._allocated_at = float("-inf")
        self._timers: list[asyncio.TimerHandle] = []
        self._closed = False

    # ------------------------------------------------------------ negotiation

    def learn(self, sdp: str, *, first_offer: dict[str, int]) -> None:
        """A client description: which video m-sections carry transport-cc (``first_offer``: the
        header extension ids the client chose in its first offer)."""
        self.ext_id = first_offer.get(URI_TRANSPORT_CC, 0)
        self.log.ext_id = self.ext_id
        self.mids.update(twcc.negotiated(sdp))

    def describe(self, sdp: str) -> str:
        """Our description with transport-cc on its video m-sections, when the client knows it."""
        return twcc.offer_to_subscriber(sdp, self.ext_id)

    def attach(self, consumer: Consumer) -> None:
        """Before ``consumer`` is configured: number its packets when the client reports on them."""
        on = consumer.kind == "video" and self.ext_id and consumer.mid in self.mids
        consumer.transport_cc = self.ext_id if on else 0
        consumer.rewriter.send_log = self.log if on else None
        consumer.budget = self.budget_for

    # ------------------------------------------------------------ feedback

    @property
    def active(self) -> bool:
        """Feedback arrived: the estimate governs the layer choice."""
        return self.feedbacks > 0

    def on_feedback(self, data: bytes) -> None:
        """One RTPFB FMT=15 message from the subscriber."""
        try:
            feedback = twcc.parse_feedback(data)
        except ValueError:
            self.malformed += 1
            return
        if self._reference is not None and feedback.reference_time < self._reference - (1 << 23):
            self._reference_base += 1 << 24  # the 24-bit reference time wrapped (every ~12 days)
        self._reference = feedback.reference_time
        results = packet_results(feedback, self.log, self._reference_base)
        if not results:
            return
        now = self._clock()
        before = self.estimate.bitrate if self.feedbacks else 0
        self.feedbacks += 1
        self.estimate.on_feedback(results, time.monotonic_ns() // 1000)
        probed = self.probes.on_results(results, now)
        if probed is not None:
            self.estimate.on_probe(probed)
        after = self.estimate.bitrate
        if not before or abs(after - before) >= 0.05 * before:
            self.timeline.append((now, after))
            del self.timeline[:-TIMELINE]
            self._reallocate(now)
        self._maybe_probe(now)

    # ------------------------------------------------------------ shares

    def budget_for(self, consumer: Consumer) -> Optional[int]:
        """The bitrate ``consumer``'s layer must fit in (None: no estimate, use the fallback)."""
        if not self.active or consumer.kind != "video":
            return None
        now = self._clock()
        if consumer.id not in self._budgets or now - self._allocated_at > ALLOCATION_SECONDS:
            self._allocate(now)
        return self._budgets.get(consumer.id)

    def stats(self) -> dict[str, object]:
        return {
            "transport_cc": bool(self.ext_id and self.mids),
            "estimate_bps": self.estimate.bitrate if self.active else None,
            "needed_bps": self._needed,
            "budgets": dict(self._budgets),
            "layers": {
                c.id: {
                    "current": c.switch.current,
                    "target": c.switch.target,
                    "max_height": c.max_height,
                    "states": [(s.active, s.bitrate, s.height) for s in c.producer.layer_states()],
                }
                for c in self._consumers()
                if c.switch is not None and c.producer is not None
            },
            "feedbacks": self.feedbacks,
            "probes": [
                {"at": at, "estimate": before, "rate": rate, "measured": int(got)}
                for at, before, rate, got in self.probes.results[-10:]
            ],
            "timeline": self.timeline[-120:],
        }

    def close(self) -> None:
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    # ------------------------------------------------------------ private

    def _allocate(self, now: float) -> None:
        """Share the estimate: fixed streams first, then simulcast tiles tallest first, each the
        layer ``choose_layer`` gives it within what is left."""
        self._allocated_at = now
        consumers = [c for c in self._consumers() if c.ready and not c.closed and c.producer is not None]
        left = self.estimate.bitrate - AUDIO_BPS * sum(1 for c in consumers if c.kind == "audio")
        needed = 0
        budgets: dict[str, int] = {}
        simulcast = []
        for c in consumers:
            if c.kind != "video":
                continue
            if c.switch is None:
                rate = c.producer.layer_states()[-1].bitrate if c.producer is not None else 0
                left -= rate
                needed += rate
                budgets[c.id] = max(rate, 0)
            else:
                simulcast.append(c)
        simulcast.sort(key=lambda c: -(c.max_height if c.max_height is not None else 1 << 16))
        for c in simulcast:
            assert c.producer is not None and c.switch is not None
            layers = c.producer.layer_states()
            current = c.switch.current if c.switch.current >= 0 else c.switch.target
            budgets[c.id] = max(left, 0)
            got = choose_layer(layers, current=current, estimate_bps=max(left, 0), max_height=c.max_height)
            want = choose_layer(layers, current=current, estimate_bps=None, max_height=c.max_height)
            left -= layers[got].bitrate
            needed += layers[want].bitrate
        self._budgets = budgets
        self._needed = needed + AUDIO_BPS * sum(1 for c in consumers if c.kind == "audio")

    def _reallocate(self, now: float) -> None:
        self._allocate(now)
        for consumer in list(self._consumers()):
            if consumer.kind == "video" and consumer.ready:
                consumer.update_layer()

    def _maybe_probe(self, now: float) -> None:
        if self._closed:
            return
        if now - self._allocated_at > ALLOCATION_SECONDS:
            self._allocate(now)
        # the layer choice wants a margin above a layer's rate (layers.UP_MARGIN): probe for it
        cluster = self.probes.want(estimate=self.estimate.bitrate, needed=int(self._needed * 1.25), now=now)
        if cluster is None:
            return
        carrier = self._carrier()
        if carrier is None:
            self.probes.clusters.pop(cluster.id, None)
            return
        rw = carrier.rewriter
        size = PADDING + 20 if rw.rtx_pt is not None else rw.octets // max(rw.packets, 1) + 40
        per_burst, gap = cluster_shape(cluster.rate, size)
        loop = asyncio.get_running_loop()
        for i in range(BURSTS):
            self._timers.append(loop.call_later(i * gap, self._burst, carrier, cluster, per_burst, i))
        self._timers = [t for t in self._timers if not t.cancelled()][-4 * BURSTS :]

    def _carrier(self) -> Optional[Consumer]:
        """A video consumer numbered on this transport, whose streams can carry probe padding."""
        for c in self._consumers():
            rw = c.rewriter
            if c.kind == "video" and c.ready and rw.send_log is self.log and rw.packets and rw.last_seq is not None:
                return c
        return None

    def _burst(self, carrier: Consumer, cluster: Cluster, count: int, index: int) -> None:
        if self._closed or carrier.closed:
            return
        rw = carrier.rewriter
        log = self.log
        log.probe_cluster = cluster.id
        before = rw.retransmitted
        try:
            sent = send_padding(rw, count) or rw.retransmit(self._newest(rw, count))
        finally:
            log.probe_cluster = -1
        rw.retransmitted = before  # probes are not repairs
        cluster.sent += sent
        if index == BURSTS - 1:
            cluster.last_seq = log.next - 1

    @staticmethod
    def _newest(rw: RtpRewriter, count: int) -> list[int]:
        """Sequence numbers of the newest packets ``rw`` still holds (a subscriber without RTX
        gets them again as probe padding and discards them as duplicates)."""
        last, history = rw.last_seq, rw.history
        seqs: list[int] = []
        if last is None or history is None:
            return seqs
        back = 0
        while len(seqs) < count and back < 64:
            if history[(last - back) & rw.mask] is not None:
                seqs.append((last - back) & 0xFFFF)
            back += 1
        return seqs
