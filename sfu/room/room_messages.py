"""What the engine tells one participant: typed messages, no JSON.

``Router`` and ``Peer`` hand these to a participant's ``Notify`` callback;
``sfu/room/signaling.py`` alone turns them into the wire format of
docs/architecture.md (``to_wire``). Keeping the protocol's spelling in one module means
a field renamed on the wire is renamed in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional, Union


@dataclass(frozen=True)
class Offer:
    """A server-initiated renegotiation: the client answers it."""

    sdp: str


@dataclass(frozen=True)
class Answer:
    sdp: str


@dataclass(frozen=True)
class Joined:
    peer_id: str
    participants: list[dict[str, Any]]
    recording: bool


@dataclass(frozen=True)
class PeerError:
    code: str
    message: str


@dataclass(frozen=True)
class ParticipantJoined:
    peer_id: str
    user: dict[str, Any]


@dataclass(frozen=True)
class ParticipantLeft:
    peer_id: str
    user: dict[str, Any]


@dataclass(frozen=True)
class Tracks:
    """A publisher's tracks as this subscriber receives them (each with its mid)."""

    peer_id: str
    tracks: list[dict[str, Any]]


@dataclass(frozen=True)
class ActiveSpeaker:
    peer_id: Optional[str]


@dataclass(frozen=True)
class Chat:
    from_peer: str
    user: dict[str, Any]
    text: str
    at: float


@dataclass(frozen=True)
class Recording:
    on: bool


@dataclass(frozen=True)
class SessionEnded:
    pass


@dataclass(frozen=True)
class Quality:
    """A participant's connection quality as the server sees it (excellent, good, poor, lost)."""

    peer_id: str
    quality: str
    loss: float
    rtt_ms: Optional[float]


@dataclass(frozen=True)
class PlayoutDelay:
    """To subscribers: hold ``peer_id``'s ``source`` video this long before showing it, the
    time a repair of that publisher's uplink takes (0: no hold; sfu/room/playout.py)."""

    peer_id: str
    source: str
    delay_ms: int


@dataclass(frozen=True)
class PublishLayers:
    """Dynacast, to a publisher only: which simulcast layers (by rid) of its track
    ``track_id`` (its own m-line ``mid``, source ``source``) to keep sending."""

    track_id: str
    mid: str
    source: str
    layers: dict[str, bool]


RoomMessage = Union[
    Offer,
    Answer,
    Joined,
    PeerError,
    ParticipantJoined,
    ParticipantLeft,
    Tracks,
    ActiveSpeaker,
    Chat,
    Recording,
    SessionEnded,
    Quality,
    PlayoutDelay,
    PublishLayers,
]
Notify = Callable[[RoomMessage], None]
