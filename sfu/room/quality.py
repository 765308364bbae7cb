"""Connection quality: a score per participant from what the server sees of their links.

Every few seconds the router samples each participant: the loss on what they send (gaps
in their sequence numbers), the loss, jitter and round-trip time their receiver reports
give for what we send them, and whether their media arrives at all. ``score`` turns that
into excellent / good / poor / lost; ``QualityMonitor`` keeps each participant's level,
says when it changes (the room shows it on their tile) and adds up the time spent at each
level, which the application stores with the session for the mentor's analytics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

LEVELS = ("excellent", "good", "poor", "lost")


@dataclass(frozen=True)
class LinkSample:
    """One participant's links over the last interval (the worse of up and down)."""

    loss: float  # 0..1
    rtt_ms: Optional[float]
    jitter_ms: Optional[float]
    #: their media reaches us (or they send nothing on purpose) and their connection is up
    connected: bool


def score(sample: LinkSample) -> str:
    if not sample.connected:
        return "lost"
    rtt = sample.rtt_ms or 0.0
    jitter = sample.jitter_ms or 0.0
    if sample.loss < 0.01 and rtt < 150 and jitter < 30:
        return "excellent"
    if sample.loss < 0.04 and rtt < 300 and jitter < 60:
        return "good"
    return "poor"


class QualityMonitor:
    """Each participant's level now, and the seconds spent at each level per user."""

    def __init__(self) -> None:
        self.levels: dict[str, str] = {}  # peer id -> level
        self.seconds: dict[str, dict[str, float]] = {}  # user key -> level -> seconds
        self._last: dict[str, float] = {}  # peer id -> when it was last sampled

    def update(self, peer_id: str, user_key: str, sample: LinkSample, now: float) -> Optional[str]:
        """Record a sample; returns the new level when it changed, else None."""
        level = score(sample)
        before = self.levels.get(peer_id)
        since = self._last.get(peer_id)
        if since is not None and before is not None:
            # the interval that just ended is charged to the level it had
            per = self.seconds.setdefault(user_key, {})
            per[before] = per.get(before, 0.0) + max(now - since, 0.0)
        self._last[peer_id] = now
        self.levels[peer_id] = level
        return level if level != before else None

    def forget(self, peer_id: str, user_key: str, now: float) -> None:
        """The participant left: their last interval counts at the level they had."""
        level = self.levels.pop(peer_id, None)
        since = self._last.pop(peer_id, None)
        if level is not None and since is not None:
            per = self.seconds.setdefault(user_key, {})
            per[level] = per.get(level, 0.0) + max(now - since, 0.0)
