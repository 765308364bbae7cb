"""Upstream NACK: a packet lost between a publisher and the server is asked for again.

Without it, one lost packet on the mentor's uplink breaks the picture for every
subscriber until the next keyframe (each of them PLIs, the publisher sends a keyframe
for all). The forwarder reports gaps in a publisher's sequence numbers as they appear;
this asks the publisher for them at once (RTCP NACK), forgets them once repaired (the RTX
retransmission goes through the forwarder to every subscriber like any packet), and asks
again while they stay missing, up to ``MAX_TRIES`` times or ``MAX_AGE`` seconds.

The retries are paced by the round trip to the publisher, as libwebrtc's and mediasoup's
NACK generators pace theirs: a browser resends a packet at most once per its own round
trip (libwebrtc's packet history ignores a NACK for a packet it resent less than an RTT
ago), so a second NACK sooner than that is thrown away, and with a fixed 40 ms step every
retry fell inside one 80 ms round trip: a packet whose retransmission was lost too was
never asked for again. The round trip is learnt from the repairs themselves (the time
from the first NACK to the packet's arrival; 100 ms until one is timed).

A packet given up on leaves every subscriber's decoder waiting for a keyframe (Chrome asks
for one only after ~3 s without a decodable frame): ``on_lost`` is told at once, and the
producer asks the publisher for that keyframe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Optional

#: libwebrtc's NACK generator: 10 tries; the round trip before one is known: 100 ms
MAX_TRIES = 10
DEFAULT_RTT = 0.1
#: a retry waits this multiple of the round trip (a NACK sooner than the publisher's own
#: RTT after its last resend is ignored by it), plus a little for its pacer
RETRY_FACTOR = 1.2
RETRY_SLACK = 0.005
#: never retry faster than this, whatever a reordered packet made the round trip look like
MIN_RETRY = 0.02
MAX_AGE = 1.0
#: a jump bigger than this is a restart or a reordering storm, not a few losses
MAX_GAP = 64
MAX_PENDING = 512


class UpstreamNack:
    """One publisher stream's missing packets and the NACKs that ask for them."""

    def __init__(
        self,
        clock: Callable[[], float],
        send: Callable[[list[int]], None],
        on_lost: Optional[Callable[[], None]] = None,
    ) -> None:
        self._clock = clock
        self._send = send
        self._on_lost = on_lost
        # seq -> (first asked at, last asked at, tries)
        self._pending: dict[int, tuple[float, float, int]] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        #: smoothed time from a NACK to its repair (seconds)
        self.rtt = DEFAULT_RTT
        self._timed = False
        self.requested = 0
        self.retried = 0
        self.repaired = 0
        self.given_up = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def retry_interval(self) -> float:
        return max(MIN_RETRY, RETRY_FACTOR * self.rtt + RETRY_SLACK)

    def missing(self, seqs: Iterable[int]) -> None:
        now = self._clock()
        fresh = []
        for seq in seqs:
            if len(self._pending) >= MAX_PENDING:
                break
            if seq not in self._pending:
                self._pending[seq] = (now, now, 1)
                fresh.append(seq)
        if fresh:
            self.requested += len(fresh)
            self._send(fresh)
            self._schedule(now)

    def arrived(self, seq: int) -> None:
        """The retransmission of a packet we had asked for came: it times the round trip."""
        entry = self._pending.pop(seq, None)
        if entry is None:
            return
        self.repaired += 1
        # Timed from the first request even after retries: publishers ignore requests
        # within their own round trip, so the first is nearly always the one answered
        # (a lost retransmission makes a sample of ~2 RTT, which the smoothing absorbs).
        sample = min(max(self._clock() - entry[0], 0.0), MAX_AGE)
        if self._timed:
            self.rtt += (sample - self.rtt) / 8
        else:
            self.rtt = sample
            self._timed = True

    def late(self, seq: int) -> None:
        """The original of a packet we had asked for came after all (reordered on the way):
        no longer missing, and no round trip to learn from it."""
        if self._pending.pop(seq, None) is not None:
            self.repaired += 1

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def _schedule(self, now: float) -> None:
        if self._timer is not None or not self._pending:
            return
        due = min(last for _, last, _ in self._pending.values()) + self.retry_interval
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous test): retries wait for the next gap
            return
        self._timer = loop.call_later(max(due - now, 0.005), self._retry)

    def _retry(self) -> None:
        self._timer = None
        now = self._clock()
        interval = self.retry_interval
        again = []
        lost = 0
        for seq, (first, last, tries) in list(self._pending.items()):
            if now - first > MAX_AGE:
                del self._pending[seq]
                lost += 1
            elif now - last < interval - 0.002:
                continue
            elif tries >= MAX_TRIES:
                del self._pending[seq]
                lost += 1
            else:
                self._pending[seq] = (first, now, tries + 1)
                again.append(seq)
        if again:
            self.retried += len(again)
            self._send(again)
        if lost:
            self.given_up += lost
            if self._on_lost is not None:
                self._on_lost()
        self._schedule(now)
