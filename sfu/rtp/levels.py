"""Voice activity from the audio-level header extension (RFC 6464), summed per producer.

The forwarder adds each audio packet here (C in the native forwarder, this class in the Python
one) and the room's speaker detector takes the sums every evaluation, so an audio packet costs no
Python call on the native path. Time is counted by RTP timestamps, not packets: with DTX a silent
second is 2-3 packets against a voiced second's 50.
"""

from __future__ import annotations

#: -dBov at or below which a packet counts as speech (0 loudest, 127 silence).
VOICE_LEVEL = 50
#: a longer step between timestamps is a restart or a reordering: no time to account
MAX_STEP = 2.0
#: a DTX gap (400 ms) is that much silence; longer ones (mute) count as little
SILENCE_CAP = 0.5
#: one voiced packet counts for at most this long: gaps are not speech
VOICED_CAP = 0.1


class LevelWindow:
    """Seconds of voiced and of all audio since the last ``take``."""

    __slots__ = ("clock_rate", "voiced", "total", "last_ts")

    def __init__(self, clock_rate: int = 48000) -> None:
        self.clock_rate = clock_rate
        self.voiced = 0.0
        self.total = 0.0
        self.last_ts = -1

    def add(self, level_byte: int, timestamp: int) -> None:
        """Account one packet (the raw extension byte: V bit + level)."""
        if self.last_ts >= 0:
            delta = ((timestamp - self.last_ts) & 0xFFFFFFFF) / self.clock_rate
            if delta < MAX_STEP:
                self.total += min(delta, SILENCE_CAP)
                if (level_byte & 0x7F) <= VOICE_LEVEL:
                    self.voiced += min(delta, VOICED_CAP)
        self.last_ts = timestamp

    def take(self) -> tuple[float, float]:
        """``(voiced, total)`` seconds since the last call, and start a new window."""
        out = (self.voiced, self.total)
        self.voiced = self.total = 0.0
        return out
