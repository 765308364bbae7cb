"""Observer: how the application (and the recorder) listens to a Router.

Events are named strings with a dataclass payload; callbacks may be plain
functions or coroutine functions (run as tasks, errors logged). RTP taps
receive every forwarded packet synchronously and must be cheap.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

logger = logging.getLogger(__name__)

#: Event names emitted on ``Router.observer``.
PARTICIPANT_JOINED = "participant-joined"
PARTICIPANT_LEFT = "participant-left"
TRACK_PUBLISHED = "track-published"
TRACK_CLOSED = "track-closed"
TRACK_MUTED = "track-muted"
ACTIVE_SPEAKER = "active-speaker"
TALK_TIME = "talk-time"
CHAT_MESSAGE = "chat"
READY_CHANGED = "ready"
RECORDING_STATE = "recording"
ROUTER_CLOSED = "router-closed"
QUALITY_CHANGED = "quality-changed"
#: the participant's media connection came up (ICE and DTLS done): they are really in the room
PEER_CONNECTED = "peer-connected"
QUALITY_SUMMARY = "quality-summary"

EVENTS = frozenset(
    {
        PARTICIPANT_JOINED,
        PARTICIPANT_LEFT,
        TRACK_PUBLISHED,
        TRACK_CLOSED,
        TRACK_MUTED,
        ACTIVE_SPEAKER,
        TALK_TIME,
        CHAT_MESSAGE,
        READY_CHANGED,
        RECORDING_STATE,
        ROUTER_CLOSED,
        QUALITY_CHANGED,
        QUALITY_SUMMARY,
        PEER_CONNECTED,
    }
)


@dataclass
class ParticipantEvent:
    room_id: str
    peer_id: str
    user_key: str
    display_name: str
    role: str
    app_data: dict[str, Any]
    #: For "participant-left": "left", "disconnected", "replaced", "ended", "kicked".
    reason: str = ""


@dataclass
class TrackEvent:
    room_id: str
    peer_id: str
    user_key: str
    producer_id: str
    kind: str
    source: str
    muted: bool = False


@dataclass
class ActiveSpeakerEvent:
    room_id: str
    peer_id: Optional[str]
    user_key: Optional[str]


@dataclass
class TalkTimeEvent:
    """Seconds of detected speech per user key, emitted when the router closes."""

    room_id: str
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class QualityEvent:
    """A participant's connection quality changed (excellent, good, poor, lost)."""

    room_id: str
    peer_id: str
    user_key: str
    quality: str
    loss: float
    rtt_ms: Optional[float]


@dataclass
class QualitySummaryEvent:
    """Seconds per quality level per user key, emitted when the router closes."""

    room_id: str
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ChatEvent:
    room_id: str
    peer_id: str
    user_key: str
    display_name: str
    text: str
    at: float


@dataclass
class ReadyEvent:
    room_id: str
    peer_id: str
    user_key: str
    role: str
    ready: bool


@dataclass
class RecordingEvent:
    room_id: str
    on: bool


@dataclass
class RouterClosedEvent:
    room_id: str
    reason: str


#: An RTP tap: (producer_id, kind, decrypted RTP packet bytes as received).
RtpTap = Callable[[str, str, bytes], None]


class Observer:
    """Event callbacks plus the per-packet RTP taps for a router."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Read on the hot path: an empty list costs one truth test per packet.
        self.rtp_taps: list[RtpTap] = []

    def on(self, event: str, callback: Callable[[Any], Any]) -> None:
        """Register ``callback(payload)`` for ``event`` (one of ``EVENTS``)."""
        if event not in EVENTS:
            raise TypeError(f"unknown event {event!r}")
        self._listeners.setdefault(event, []).append(callback)

    def off(self, event: str, callback: Callable[[Any], Any]) -> None:
        listeners = self._listeners.get(event, [])
        if callback in listeners:
            listeners.remove(callback)

    def add_rtp_tap(self, tap: RtpTap) -> None:
        """Receive every RTP packet a producer forwards (recording hook)."""
        self.rtp_taps.append(tap)

    def remove_rtp_tap(self, tap: RtpTap) -> None:
        if tap in self.rtp_taps:
            self.rtp_taps.remove(tap)

    def emit(self, event: str, payload: Any) -> None:
        for callback in list(self._listeners.get(event, ())):
            try:
                result = callback(payload)
            except Exception:
                logger.exception("observer callback for %s failed", event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    async def drain(self) -> None:
        """Wait for coroutine callbacks still running (used on close)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("observer callback failed", exc_info=task.exception())
