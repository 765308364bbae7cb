"""A send-side bandwidth estimate per subscriber, from its transport-wide feedback (the Google
congestion control family: draft-ietf-rmcat-gcc).

Toward a subscriber the SFU is the sender: it numbers each video packet (``sendlog.py``), the
subscriber's browser reports when each number arrived (RTCP RTPFB FMT=15, ``twcc.parse_feedback``)
and this module turns the two into the bitrate the subscriber's downlink takes now:

- **delay-based**: packets are grouped by send time (a group is what left within 5 ms); for two
  consecutive groups, how much later the second arrived than it was sent (the inter-group delay
  variation) says whether a queue is growing. A trendline filter (least-squares slope over the
  last 20 smoothed accumulated delays) feeds an overuse detector whose threshold adapts to the
  path's noise, and the detector drives an AIMD rate controller: multiplicative increase (8 % a
  second) far from the link's known capacity, additive near it, a cut to 0.85 x the measured
  throughput on overuse, hold while the queue drains;
- **loss-based**: more than 10 % lost over a window cuts the rate by half the loss; under 2 % it
  may grow again;
- the estimate is the smaller of the two. A probe's result (``probing.py``) lifts both at once,
  which is how a subscriber held low climbs back in seconds rather than at 8 % a second.

Everything here is pure (times in microseconds passed in), so synthetic traces test it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

from .sendlog import SendLog
from .twcc import TwccFeedback

#: the estimate a subscriber starts from: the SFU forwards what the tiles ask for until the
#: feedback shows the downlink cannot take it (a browser's receiver cannot tell us more before
#: anything was sent); the delay and loss signals bring it down within a few hundred ms
START_BPS = 2_500_000
MIN_BPS = 100_000
MAX_BPS = 30_000_000

BURST_US = 5_000  # packets sent within this of a group's first belong to the group
TREND_WINDOW = 20
TREND_SMOOTHING = 0.9
TREND_GAIN = 4.0
THRESHOLD_START = 12.5
THRESHOLD_MIN, THRESHOLD_MAX = 6.0, 600.0
K_UP, K_DOWN = 0.0087, 0.039
OVERUSE_TIME_MS = 10.0
BETA = 0.85
DECREASE_INTERVAL_US = 300_000
ACKED_WINDOW_US = 500_000
LOSS_HIGH, LOSS_LOW = 0.10, 0.02
LOSS_MIN_PACKETS = 20

NORMAL, OVERUSING, UNDERUSING = "normal", "overusing", "underusing"


@dataclass(frozen=True)
class PacketResult:
    """One packet we sent and what the feedback said of it."""

    seq: int  # unwrapped transport-wide number
    sent_us: int
    size: int
    cluster: int  # probe cluster, -1: media
    arrival_us: Optional[int]  # None: reported lost


def packet_results(feedback: TwccFeedback, log: SendLog, reference_base: int = 0) -> list[PacketResult]:
    """The packets ``feedback`` reports on, joined with what ``log`` knows of their sending
    (numbers the log no longer holds are skipped). Arrival times are the subscriber's clock:
    only their differences mean anything. ``reference_base`` unwraps the 24-bit reference time."""
    base = log.unwrap(feedback.base_seq)
    reference_us = (reference_base + feedback.reference_time) * 64_000
    out = []
    for i, arrival in enumerate(feedback.arrivals):
        sent = log.sent(base + i)
        if sent is None:
            continue
        out.append(
            PacketResult(base + i, sent[0], sent[1], sent[2], None if arrival is None else reference_us + arrival)
        )
    return out


class Trendline:
    """Slope of the smoothed accumulated delay variation over the last ``TREND_WINDOW`` groups."""

    def __init__(self) -> None:
        self.accumulated = 0.0
        self.smoothed = 0.0
        self.deltas = 0
        self.first_arrival_ms: Optional[float] = None
        self.window: deque[tuple[float, float]] = deque(maxlen=TREND_WINDOW)

    def update(self, delay_variation_ms: float, arrival_ms: float) -> float:
        """Add one group's delay variation; returns the modified trend the detector compares."""
        if self.first_arrival_ms is None:
            self.first_arrival_ms = arrival_ms
        self.deltas = min(self.deltas + 1, 1000)
        self.accumulated += delay_variation_ms
        self.smoothed = TREND_SMOOTHING * self.smoothed + (1 - TREND_SMOOTHING) * self.accumulated
        self.window.append((arrival_ms - self.first_arrival_ms, self.smoothed))
        if len(self.window) < TREND_WINDOW:
            return 0.0
        xs = [x for x, _ in self.window]
        ys = [y for _, y in self.window]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
        return min(self.deltas, 60) * slope * TREND_GAIN


class OveruseDetector:
    """Normal, overusing or underusing, against a threshold that follows the trend's noise."""

    def __init__(self) -> None:
        self.threshold = THRESHOLD_START
        self.state = NORMAL
        self._over_ms = -1.0
        self._over_count = 0
        self._prev_trend = 0.0
        self._last_update_ms: Optional[float] = None

    def detect(self, trend: float, send_delta_ms: float, now_ms: float) -> str:
        if trend > self.threshold:
            self._over_ms = send_delta_ms / 2 if self._over_ms < 0 else self._over_ms + send_delta_ms
            self._over_count += 1
            if self._over_ms > OVERUSE_TIME_MS and self._over_count > 1 and trend >= self._prev_trend:
                self._over_ms, self._over_count = 0.0, 0
                self.state = OVERUSING
        elif trend < -self.threshold:
            self._over_ms, self._over_count = -1.0, 0
            self.state = UNDERUSING
        else:
            self._over_ms, self._over_count = -1.0, 0
            self.state = NORMAL
        self._prev_trend = trend
        self._adapt(trend, now_ms)
        return self.state

    def _adapt(self, trend: float, now_ms: float) -> None:
        last, self._last_update_ms = self._last_update_ms, now_ms
        if last is None:
            return
        size = abs(trend)
        if size > self.threshold + 15.0:
            return  # a spike (a route change, a descheduled sender) must not drag the threshold
        k = K_DOWN if size < self.threshold else K_UP
        self.threshold += k * (size - self.threshold) * min(now_ms - last, 100.0)
        self.threshold = min(max(self.threshold, THRESHOLD_MIN), THRESHOLD_MAX)


class AimdRate:
    """The delay-based rate: increase while normal, cut on overuse, hold while draining."""

    def __init__(self, start_bps: int) -> None:
        self.bps = float(start_bps)
        self.state = "increase"
        self._last_us: Optional[int] = None
        self._last_cut_us = -(10**12)
        self._capacity: Optional[float] = None  # kbit/s average of throughput at overuse
        self._capacity_var = 0.4

    def update(self, signal: str, acked_bps: Optional[float], now_us: int) -> float:
        dt = 0.0 if self._last_us is None else min(max(now_us - self._last_us, 0) / 1e6, 1.0)
        self._last_us = now_us
        if signal == OVERUSING:
            if now_us - self._last_cut_us >= DECREASE_INTERVAL_US:
                base = acked_bps if acked_bps else self.bps
                # from what got through, not from the estimate: a sender below its estimate
                # (tiles that want little) must not see it compound away on every overuse
                if BETA * base < self.bps:
                    self._note_capacity(base)
                    self.bps = BETA * base
                self._last_cut_us = now_us
            self.state = "hold"
        elif signal == UNDERUSING:
            self.state = "hold"
        elif self.state == "hold":
            self.state = "increase"
        elif self.state == "increase" and dt > 0:
            before = self.bps
            if self._near_capacity():
                grown = before + max(1000.0 * dt, 1200 * 8 / 0.2 * dt)  # about a packet per response time
            else:
                grown = before * 1.08**dt
            # never far above what actually got through: without a probe, an idle estimate
            # would otherwise climb to any value
            limit = 1.5 * acked_bps + 10_000 if acked_bps else grown
            self.bps = max(before, min(grown, limit)) if before < limit else before
        self.bps = min(max(self.bps, MIN_BPS), MAX_BPS)
        return self.bps

    def set(self, bps: float) -> None:
        """A probe measured ``bps`` of capacity: start from there."""
        self.bps = min(max(bps, MIN_BPS), MAX_BPS)
        self._capacity = None  # the old capacity is history
        self.state = "hold"

    def _note_capacity(self, bps: float) -> None:
        kbps = bps / 1000
        if self._capacity is None:
            self._capacity = kbps
            return
        if abs(kbps - self._capacity) > 3 * math.sqrt(self._capacity_var * self._capacity):
            self._capacity = kbps  # far off: the link changed
        else:
            self._capacity = 0.95 * self._capacity + 0.05 * kbps
        norm = max(self._capacity, 1.0)
        self._capacity_var = min(max(0.95 * self._capacity_var + 0.05 * (self._capacity - kbps) ** 2 / norm, 0.4), 2.5)

    def _near_capacity(self) -> bool:
        if self._capacity is None:
            return False
        spread = 3 * math.sqrt(self._capacity_var * self._capacity)
        return abs(self.bps / 1000 - self._capacity) <= spread


class SendSideEstimate:
    """One subscriber's downlink, from the feedback on the packets we sent it."""

    def __init__(self, start_bps: int = START_BPS) -> None:
        self.trendline = Trendline()
        self.detector = OveruseDetector()
        self.delay = AimdRate(start_bps)
        self.loss_bps = float(start_bps)
        self.acked_bps: Optional[float] = None
        self.signal = NORMAL
        self.loss = 0.0
        self.feedbacks = 0
        self._acked: deque[tuple[int, int]] = deque()
        self._acked_bytes = 0
        self._group: Optional[list[int]] = None  # [first send, last send, last arrival]
        self._prev_group: Optional[list[int]] = None
        self._loss_counts = [0, 0]  # lost, total since the last loss update
        self._loss_at: Optional[int] = None
        self._loss_cut_us = -(10**12)
        self._last_arrival = -(10**15)

    @property
    def bitrate(self) -> int:
        """The estimate (bits per second): the smaller of the delay- and the loss-based rates."""
        return int(min(self.delay.bps, self.loss_bps))

    def on_feedback(self, results: list[PacketResult], now_us: int) -> int:
        """One feedback message's packets (in sequence order); returns the new estimate."""
        self.feedbacks += 1
        lost = 0
        for r in results:
            if r.arrival_us is None:
                lost += 1
                continue
            self._acknowledge(r)
            self._group_packet(r)
        self._loss_update(lost, len(results), now_us)
        self.signal = self.detector.state
        self.delay.update(self.signal, self.acked_bps, now_us)
        return self.bitrate

    def on_probe(self, bps: float) -> None:
        """A probe cluster got through at ``bps``: both rates start from there when higher."""
        if bps > self.bitrate:
            self.delay.set(bps)
            self.loss_bps = max(self.loss_bps, bps)

    # ---------------------------------------------------------------- private

    def _acknowledge(self, r: PacketResult) -> None:
        arrival = r.arrival_us
        assert arrival is not None
        acked = self._acked
        acked.append((arrival, r.size))
        self._acked_bytes += r.size
        newest = max(arrival, acked[-1][0])
        while acked and acked[0][0] < newest - ACKED_WINDOW_US:
            self._acked_bytes -= acked.popleft()[1]
        span = newest - acked[0][0]
        if span >= 150_000:
            self.acked_bps = self._acked_bytes * 8 / (span / 1e6)

    def _group_packet(self, r: PacketResult) -> None:
        arrival = r.arrival_us
        assert arrival is not None
        group = self._group
        if group is None:
            self._group = [r.sent_us, r.sent_us, arrival]
            return
        if r.sent_us < group[0]:
            return  # reordered from before this group: says nothing new
        in_burst = r.sent_us - group[0] <= BURST_US
        # packets that arrive back to back faster than they were sent are one burst too
        if not in_burst and arrival - group[2] < BURST_US and (arrival - group[2]) - (r.sent_us - group[1]) < 0:
            in_burst = True
        if in_burst:
            group[1] = max(group[1], r.sent_us)
            group[2] = max(group[2], arrival)
            return
        prev = self._prev_group
        if prev is not None:
            send_delta_ms = (group[1] - prev[1]) / 1000
            arrival_delta_ms = (group[2] - prev[2]) / 1000
            if arrival_delta_ms >= 0:
                trend = self.trendline.update(arrival_delta_ms - send_delta_ms, group[2] / 1000)
                self.detector.detect(trend, send_delta_ms, group[2] / 1000)
        self._prev_group = group
        self._group = [r.sent_us, r.sent_us, arrival]

    def _loss_update(self, lost: int, total: int, now_us: int) -> None:
        counts = self._loss_counts
        counts[0] += lost
        counts[1] += total
        if counts[1] < LOSS_MIN_PACKETS:
            return
        loss = counts[0] / counts[1]
        self.loss = loss
        self._loss_counts = [0, 0]
        last, self._loss_at = self._loss_at, now_us
        dt = 0.0 if last is None else min(max(now_us - last, 0) / 1e6, 1.0)
        if loss > LOSS_HIGH:
            # once per interval: a cut takes a round trip to show in the loss reports
            if now_us - self._loss_cut_us >= DECREASE_INTERVAL_US:
                self.loss_bps = max(self.loss_bps * (1 - 0.5 * loss), MIN_BPS)
                self._loss_cut_us = now_us
        elif loss < LOSS_LOW:
            # grow back at 8 % a second, never far above what the delay signal allows
            self.loss_bps = min(self.loss_bps * 1.08**dt + 1000 * dt, max(self.delay.bps, self.loss_bps))
