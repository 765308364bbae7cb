"""PeerLearn's media engine: an SFU on aiortc that forwards RTP without codecs.

Knows nothing of users or HTTP: the application creates routers, hands
authenticated signaling channels to ``serve_participant`` and listens to
``Router.observer`` (the event names and payloads are in ``sfu.observer``).

The parts live in packages: ``transport/`` (ICE, sockets, SRTP, the aiortc bridge),
``rtp/`` (the packet path), ``room/`` (router, peers, producers, consumers, signaling),
``recording/``; each package's README says what it holds and what it may import.
"""

from .config import SfuConfig
from .engine import Engine, EngineStats
from .errors import InvalidStateError, SignalingError
from .room import observer
from .room.observer import Observer
from .room.participant import ParticipantInfo
from .room.router import Router, RouterStats
from .room.signaling import SignalingChannel, serve_participant
from .transport.turn import ice_servers, turn_credentials

__all__ = [
    "Engine",
    "EngineStats",
    "InvalidStateError",
    "Observer",
    "ParticipantInfo",
    "Router",
    "RouterStats",
    "SfuConfig",
    "SignalingChannel",
    "SignalingError",
    "ice_servers",
    "observer",
    "serve_participant",
    "turn_credentials",
]
