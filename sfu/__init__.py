"""PeerLearn's media engine: an SFU on aiortc that forwards RTP without codecs.

Knows nothing of users or HTTP: the application creates routers, hands
authenticated signaling channels to ``serve_participant`` and listens to
``Router.observer``.
"""

from .config import SfuConfig
from .engine import Engine, EngineStats
from .errors import InvalidStateError, SignalingError
from .observer import Observer
from .participant import ParticipantInfo
from .router import Router, RouterStats
from .signaling import SignalingChannel, serve_participant
from .turn import ice_servers, turn_credentials

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
    "serve_participant",
    "turn_credentials",
]
