"""What the packet-level SFU tests share: a clock moved by hand and a producer built with
the room's defaults (no network, no event loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sfu.room.producer import Producer


class ManualClock:
    """The SFU's clock (seconds) as a test moves it: ``clock.now += 0.5``."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_producer(clock: ManualClock, send_rtcp: Callable[[bytes], None] = lambda _b: None, **fields: Any) -> Producer:
    """A mentor's camera track; ``fields`` override any of Producer's keyword arguments
    (``keyframe_interval`` defaults to 0 here: every keyframe request goes out at once)."""
    values: dict[str, Any] = {
        "peer_id": "pe-m",
        "user_key": "mentor",
        "kind": "video",
        "source": "camera",
        "mid": "1",
        "track_id": "t",
        "rtcp_ssrc": 1,
        "keyframe_interval": 0.0,
    }
    values.update(fields)
    return Producer(clock=clock, send_rtcp=send_rtcp, **values)
