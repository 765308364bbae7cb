"""What one simulcast layer brings in: its bitrate and its frame rate, measured at ingress.

The layer choice (``layers.choose_layer``) reads both. The bitrate says whether a layer fits a
subscriber's downlink; the frame rate says whether the publisher can keep the layer up at all.
A browser short of uplink (5 % loss cut Chromium's estimate from ~5 to ~2 Mbit/s in
docs/media-quality.md) starves its top layer first: its 720p encoder drops to 10-15 fps while
360p and 180p keep 24 fps, and a learner on the top layer sees a stuttering picture with half-
second holes where a full-rate lower layer would have been smooth.

The frame rate counts new RTP timestamps among the layer's own packets (the forwarder's
``frames``; retransmissions are not counted twice) over windows of ``FPS_WINDOW`` seconds,
smoothed over the last two windows. It is unknown (None) until the layer has flowed through a
whole window: a layer that just started or resumed is not judged on a half-empty window.
"""

from __future__ import annotations

from typing import Optional

#: the bitrate is sampled over windows at least this long
RATE_WINDOW = 0.5
#: the frame rate over windows at least this long (24 fps gives ~24 frames per window)
FPS_WINDOW = 1.0
#: a layer silent this long is not flowing: the frame rate starts over
FLOWING_GAP = 1.5


class LayerMeter:
    """One layer's ingress rates, updated whenever the layer choice asks (``sample``)."""

    __slots__ = ("bps", "fps", "_rate_at", "_octets", "_fps_at", "_frames", "_flowing")

    def __init__(self) -> None:
        self.bps = 0
        #: frames per second, smoothed; None until the layer flowed for a whole window
        self.fps: Optional[float] = None
        self._rate_at = 0.0
        self._octets = 0
        self._fps_at = 0.0
        self._frames = 0
        self._flowing = False

    def sample(self, now: float, *, octets: int, frames: int, last_arrival: float) -> None:
        """The layer's counters now (its forwarder's ``media_octets``, ``frames``, ``last_arrival``)."""
        if now - self._rate_at >= RATE_WINDOW:
            if self._rate_at:
                self.bps = int((octets - self._octets) * 8 / (now - self._rate_at))
            self._rate_at, self._octets = now, octets
        if now - self._fps_at < FPS_WINDOW:
            return
        flowing = frames > 0 and now - last_arrival < FLOWING_GAP
        if self._fps_at and self._flowing and flowing:
            fps = (frames - self._frames) / (now - self._fps_at)
            self.fps = fps if self.fps is None else (self.fps + fps) / 2
        else:
            self.fps = None
        self._fps_at, self._frames, self._flowing = now, frames, flowing
