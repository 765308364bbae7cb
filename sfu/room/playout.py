"""How long subscribers should hold a publisher's video before showing it: as long as a
repair of that publisher's uplink takes.

A packet lost between a publisher and the server comes back one upstream round trip later
(sfu/rtp/upstream_nack.py asks for it). A subscriber's jitter buffer only knows its own link
to the server, a few milliseconds on a good one: it plays each frame as soon as it is whole,
so a frame waiting for a repair is late by then, and the frames behind it are thrown away to
catch up. Measured on the learner's Chromium, 5 % loss and 80 ms round trip on the mentor's
uplink: 16.2-20.4 fps with 32-50 frames dropped in 20 s; with the receiver told to hold 150 ms
(`RTCRtpReceiver.jitterBufferTarget`), 22.6-23.4 fps and 2-15 dropped (docs/media-quality.md).

So while a publisher's video needs repairs, every subscriber is told to hold it a repair's
time (``playout-delay`` message; the page sets the receiver's target), and told 0 again once
no repair was needed for ``HOLD_SECONDS``: a clean link pays no latency for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

#: a repair can take a retry: hold the learnt repair time times this, plus the pacer's slack
REPAIR_FACTOR = 1.5
SLACK_MS = 30
#: a lossy link's delay is still a conversation's: never hold longer than this
MAX_MS = 400
#: no repair for this long: back to no delay
HOLD_SECONDS = 10.0
#: smaller changes are not worth a message (the browser's own estimate moves more)
MIN_CHANGE_MS = 25


def delay_ms(repair_seconds: float) -> int:
    """The hold for a publisher whose repairs take ``repair_seconds``."""
    return min(MAX_MS, round(REPAIR_FACTOR * repair_seconds * 1000) + SLACK_MS)


class PlayoutDelays:
    """Per producer, the delay last announced and when it last needed a repair."""

    def __init__(self) -> None:
        self.announced: dict[str, int] = {}
        self._repaired: dict[str, int] = {}
        self._repaired_at: dict[str, float] = {}

    def update(self, producer_id: str, repaired: int, repair_seconds: float, now: float) -> Optional[int]:
        """``repaired``: the producer's repairs so far. The delay to announce now, or None."""
        before = self._repaired.get(producer_id)
        self._repaired[producer_id] = repaired
        if before is not None and repaired > before:
            self._repaired_at[producer_id] = now
        since = self._repaired_at.get(producer_id)
        want = delay_ms(repair_seconds) if since is not None and now - since < HOLD_SECONDS else 0
        had = self.announced.get(producer_id, 0)
        if want == had or (want and had and abs(want - had) < MIN_CHANGE_MS):
            return None
        self.announced[producer_id] = want
        return want

    def forget(self, live: Iterable[str]) -> None:
        """Drop producers that closed."""
        keep = set(live)
        for table in (self.announced, self._repaired, self._repaired_at):
            for gone in [k for k in table if k not in keep]:
                del table[gone]
