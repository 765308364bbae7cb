"""Upstream NACK: a packet lost between a publisher and the server is asked for again.

Without it, one lost packet on the mentor's uplink breaks the picture for every
subscriber until the next keyframe (each of them PLIs, the publisher sends a keyframe
for all). The forwarder reports gaps in a publisher's sequence numbers as they appear;
this asks the publisher for them at once (RTCP NACK), again every ``RETRY`` seconds up
to ``MAX_TRIES`` times, and forgets them once repaired (the RTX retransmission goes
through the forwarder to every subscriber like any packet) or older than ``MAX_AGE``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Optional

RETRY = 0.04
MAX_TRIES = 3
MAX_AGE = 1.0
#: a jump bigger than this is a restart or a reordering storm, not a few losses
MAX_GAP = 64
MAX_PENDING = 512


class UpstreamNack:
    """One publisher stream's missing packets and the NACKs that ask for them."""

    def __init__(self, clock: Callable[[], float], send: Callable[[list[int]], None]) -> None:
        self._clock = clock
        self._send = send
        self._pending: dict[int, tuple[float, int]] = {}  # seq -> (first missed at, tries)
        self._timer: Optional[asyncio.TimerHandle] = None
        self.requested = 0
        self.repaired = 0
        self.given_up = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def missing(self, seqs: Iterable[int]) -> None:
        now = self._clock()
        fresh = []
        for seq in seqs:
            if len(self._pending) >= MAX_PENDING:
                break
            if seq not in self._pending:
                self._pending[seq] = (now, 1)
                fresh.append(seq)
        if fresh:
            self.requested += len(fresh)
            self._send(fresh)
            self._schedule()

    def arrived(self, seq: int) -> None:
        """A packet we had asked for came (late, or as a retransmission)."""
        if self._pending.pop(seq, None) is not None:
            self.repaired += 1

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    def _schedule(self) -> None:
        if self._timer is None and self._pending:
            try:
                self._timer = asyncio.get_running_loop().call_later(RETRY, self._retry)
            except RuntimeError:  # no loop (a synchronous test): retries wait for the next gap
                pass

    def _retry(self) -> None:
        self._timer = None
        now = self._clock()
        again = []
        for seq, (since, tries) in list(self._pending.items()):
            if tries >= MAX_TRIES or now - since > MAX_AGE:
                del self._pending[seq]
                self.given_up += 1
            else:
                self._pending[seq] = (since, tries + 1)
                again.append(seq)
        if again:
            self._send(again)
        self._schedule()
