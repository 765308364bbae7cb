"""Typed application keys: the one place app state is declared (no module globals).

Every long-lived object of the application has one key here. ``create_app`` (api/app.py)
sets the configuration ones; the resources are created, started and stopped by their
cleanup context in api/lifecycle.py, which sets their keys during start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from api.background import Periodic
    from api.broker import MemoryBroker
    from api.db import Database
    from api.live_rooms import LiveRooms
    from api.mailer import Mailer, MailSender
    from api.metrics import Metrics
    from api.placement import InternalAddress, Placement
    from api.proxy import Network
    from api.ratelimit import RateLimiter
    from api.realtime import Hub
    from api.recommender.serving import Recommender
    from api.recommender.training import Trainer
    from api.routing import Endpoint
    from api.services.recording_manager import RecordingManager
    from api.services.scheduler import Scheduler
    from api.settings import Settings
    from sfu import Engine

# Configuration, set by create_app --------------------------------------------------------
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
# Reverse proxies whose X-Forwarded-* headers are believed (parsed from settings.trusted_proxies).
TRUSTED_NETWORKS: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_networks")
# Every JSON route with its models: the OpenAPI document is built from these.
ENDPOINTS: web.AppKey[list[Endpoint]] = web.AppKey("endpoints")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")
# This process's internal address (set by `peerlearn serve` once its internal listener is up).
INTERNAL_ADDRESS: web.AppKey[InternalAddress] = web.AppKey("internal_address")

# Resources, set by their cleanup context in api/lifecycle.py (in start order) ----------------
DB: web.AppKey[Database] = web.AppKey("db")
BROKER: web.AppKey[MemoryBroker] = web.AppKey("broker")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
HUB: web.AppKey[Hub] = web.AppKey("hub")
SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler")
MAIL_SENDER: web.AppKey[MailSender] = web.AppKey("mail_sender")
TRAINER: web.AppKey[Trainer] = web.AppKey("recsys_trainer")
RECOMMENDER: web.AppKey[Recommender] = web.AppKey("recommender")
# Retraining about daily (running only when the scheduler is enabled).
RETRAINING: web.AppKey[Periodic] = web.AppKey("recsys_retraining")
ENGINE: web.AppKey[Engine] = web.AppKey("sfu_engine")
LIVE_ROOMS: web.AppKey[LiveRooms] = web.AppKey("live_rooms")
# Open room signaling sockets of this process (closed first on shutdown).
ROOM_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("room_sockets")
PLACEMENT: web.AppKey[Placement] = web.AppKey("placement")
RECORDINGS: web.AppKey[RecordingManager] = web.AppKey("recordings")
# Deleting recordings past the retention period, hourly.
RECORDING_RETENTION: web.AppKey[Periodic] = web.AppKey("recording_retention")
