"""Audio levels (RFC 6464 header extension) -> active speaker and talk time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from sfu.rtp.levels import VOICE_LEVEL, LevelWindow

__all__ = ["VOICE_LEVEL", "SpeakerDetector"]


@dataclass
class _Activity:
    peer_id: str
    # seconds of voiced and of all audio in the current window (by RTP time, not packets:
    # with DTX a silent second is 2-3 packets against a voiced second's 50)
    voiced: float = 0.0
    total: float = 0.0
    talk_seconds: float = 0.0
    #: per-packet accounting (``add_level``), the same arithmetic the forwarders use
    window: Optional[LevelWindow] = None


@dataclass
class SpeakerDetector:
    """Picks the active speaker every ``evaluate()`` with hysteresis.

    A new speaker must beat the current one by ``margin`` (share of voiced
    packets in the window) for ``confirm`` evaluations in a row, so that a
    cough does not steal the spotlight.
    """

    on_change: Callable[[Optional[str], Optional[str]], None]
    min_share: float = 0.3
    margin: float = 0.2
    confirm: int = 2
    clock_rate: int = 48000
    active_user: Optional[str] = None
    _activity: dict[str, _Activity] = field(default_factory=dict)
    _challenger: Optional[str] = None
    _streak: int = 0

    def _of(self, user_key: str, peer_id: str) -> _Activity:
        act = self._activity.get(user_key)
        if act is None:
            act = self._activity[user_key] = _Activity(peer_id)
        act.peer_id = peer_id
        return act

    def add_level(self, user_key: str, peer_id: str, level_byte: int, timestamp: int) -> None:
        """Account one audio packet (the raw extension byte: V bit + level); the room itself
        sums packets in each producer's forwarder and hands the sums to ``add_activity``."""
        act = self._of(user_key, peer_id)
        if act.window is None:
            act.window = LevelWindow(self.clock_rate)
        act.window.add(level_byte, timestamp)
        voiced, total = act.window.take()
        act.total += total
        act.voiced += voiced
        act.talk_seconds += voiced

    def add_activity(self, user_key: str, peer_id: str, voiced: float, total: float) -> None:
        """Seconds of voiced and of all audio a producer summed since the last evaluation
        (``sfu.rtp.levels.LevelWindow``)."""
        if not total and not voiced:
            return
        act = self._of(user_key, peer_id)
        act.total += total
        act.voiced += voiced
        act.talk_seconds += voiced

    def evaluate(self) -> None:
        shares = {u: a.voiced / a.total for u, a in self._activity.items() if a.total}
        for act in self._activity.values():
            act.voiced = act.total = 0.0
        best = max(shares, key=lambda u: shares[u], default=None)
        current = self.active_user
        current_share = shares.get(current, 0.0) if current is not None else 0.0
        if best is None or shares[best] < self.min_share or best == current:
            self._challenger, self._streak = None, 0
            return
        if current is not None and shares[best] < current_share + self.margin:
            self._challenger, self._streak = None, 0
            return
        if self._challenger == best:
            self._streak += 1
        else:
            self._challenger, self._streak = best, 1
        if self._streak >= self.confirm or current is None:
            self.active_user = best
            self._challenger, self._streak = None, 0
            self.on_change(best, self._activity[best].peer_id)

    def forget(self, user_key: str) -> None:
        """The user left: keep their talk time, drop them as speaker."""
        act = self._activity.get(user_key)
        if act is not None:
            act.voiced = act.total = 0
            act.window = None
        if self.active_user == user_key:
            self.active_user = None
            self.on_change(None, None)

    def talk_time(self) -> dict[str, float]:
        return {u: round(a.talk_seconds, 3) for u, a in self._activity.items()}
