"""The application's long-lived resources: one cleanup context per resource.

Each context creates its resource, sets its typed key (api/keys.py), starts it, ``yield``s
while the app serves, then stops it. ``create_app`` lists them in start order and aiohttp
stops them in reverse: the database first, then the broker (it attaches the database's
read caches), then what needs both. Every ``start``/``stop`` below is idempotent and each
background task has a started/exited pair, as in aiortc's RTCRtpSender.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api.background import Periodic
from api.broker import MemoryBroker, RedisBroker
from api.context import Context
from api.db import Database
from api.keys import (
    BROKER,
    DB,
    ENGINE,
    HUB,
    INTERNAL_ADDRESS,
    LIMITER,
    LIVE_ROOMS,
    MAIL_SENDER,
    MAILER,
    METRICS,
    PLACEMENT,
    RECOMMENDER,
    RECORDING_RETENTION,
    RECORDINGS,
    RETRAINING,
    ROOM_SOCKETS,
    SCHEDULER,
    SETTINGS,
    TRAINER,
)
from api.live_rooms import LiveRooms, register_sfu_metrics, sfu_config
from api.mailer import MailSender
from api.migrate import upgrade_async
from api.placement import LocalPlacement, Placement, RedisPlacement, peers_served, rooms_served
from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from api.realtime import Hub
from api.recommender.model import Params
from api.recommender.schedule import retrain_if_due
from api.recommender.serving import Recommender
from api.recommender.training import Trainer
from api.services import materials, recordings
from api.services.recording_manager import RecordingManager
from api.services.scheduler import Scheduler
from sfu import Engine

log = logging.getLogger(__name__)


async def database(app: web.Application) -> AsyncIterator[None]:
    """Migrations (unless turned off), then the engine and its sessions."""
    settings = app[SETTINGS]
    if settings.migrate:
        await upgrade_async(settings.effective_database_url)
    app[DB] = Database(settings.effective_database_url, timeout=settings.database_timeout_seconds)
    yield
    await app[DB].dispose()


async def broker(app: web.Application) -> AsyncIterator[None]:
    """In-memory (one process) or Redis; the rate limiter lives where the broker does."""
    settings = app[SETTINGS]
    if settings.redis_url:
        redis_broker = RedisBroker(
            settings.redis_url,
            timeout=settings.redis_timeout_seconds,
            stale_after=settings.redis_stale_seconds,
            peer_forget=settings.redis_peer_forget_seconds,
        )
        await redis_broker.start()
        app[BROKER] = redis_broker
        app[LIMITER] = RedisRateLimiter(redis_broker)
    else:
        app[BROKER] = MemoryBroker()
        app[LIMITER] = MemoryRateLimiter()
    # Other processes' writes invalidate this one's read caches through the broker.
    await app[DB].caches.attach(app[BROKER])
    yield
    await app[DB].caches.detach()
    await app[BROKER].close()


async def realtime_hub(app: web.Application) -> AsyncIterator[None]:
    """The realtime hub behind ``GET /ws``; its sockets close in :func:`close_realtime_sockets`."""
    app[HUB] = Hub(app)
    yield


async def close_realtime_sockets(app: web.Application) -> None:
    """``on_shutdown``: close every realtime socket (aiohttp waits for open handlers)."""
    hub = app.get(HUB)
    if hub is not None:
        await hub.shutdown()


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    """Reminders, settlement, expiry (api/services/scheduler.py): always there, running only
    when ``scheduler_enabled``."""
    settings = app[SETTINGS]
    sched = Scheduler(Context.of(app), settings.scheduler_interval_seconds)
    app[SCHEDULER] = sched
    if settings.scheduler_enabled:
        sched.start()
    yield
    await sched.stop()


async def mail_sender(app: web.Application) -> AsyncIterator[None]:
    """Requests only queue e-mail; this loop delivers it (whether or not the scheduler runs)."""
    mailer = app[MAILER]
    mailer.attach(app[DB])
    sender = MailSender(mailer)
    app[MAIL_SENDER] = sender
    sender.start()
    yield
    await sender.stop()
    mailer.attach(None)


async def recommender(app: web.Application) -> AsyncIterator[None]:
    """The trainer and the recommender; with the scheduler enabled, retraining about daily."""
    settings = app[SETTINGS]
    db = app[DB]
    trainer = Trainer(
        db,
        settings.data_dir / "models",
        params=Params.from_dict(settings.recsys_params),
        eval_max_users=settings.recsys_eval_max_users,
        synthetic_eval=settings.recsys_synthetic_eval or None,
    )
    rec = Recommender(
        db,
        trainer,
        first_request_wait=settings.recsys_first_request_wait_seconds,
        sync_every=settings.recsys_sync_seconds,
    )
    trainer.on_model = rec.install  # each new version is served as soon as it is stored
    interval = settings.recsys_train_interval_seconds
    retraining = Periodic(
        "recsys-schedule",
        lambda: retrain_if_due(db, trainer, interval),
        interval=settings.recsys_schedule_check_seconds,
        delay=settings.recsys_schedule_delay_seconds,
    )
    app[TRAINER] = trainer
    app[RECOMMENDER] = rec
    app[RETRAINING] = retraining
    if settings.scheduler_enabled:
        retraining.start()
    yield
    await retraining.stop()
    await trainer.stop()


async def live_rooms(app: web.Application) -> AsyncIterator[None]:
    """The SFU engine and this process's rooms (one Router per live session), with their
    sweeper; the engine's counters on /metrics."""
    engine = Engine(sfu_config(app[SETTINGS]))
    rooms = LiveRooms(Context.of(app), engine)
    app[ENGINE] = engine
    app[LIVE_ROOMS] = rooms
    app[ROOM_SOCKETS] = set()
    register_sfu_metrics(app[METRICS], engine)
    rooms.start()
    yield
    await rooms.stop()


async def close_room_sockets(app: web.Application) -> None:
    """``on_shutdown``: close every room signaling socket."""
    for ws in list(app.get(ROOM_SOCKETS, ())):
        await ws.close(code=1001, message=b"server shutdown")


async def placement(app: web.Application) -> AsyncIterator[None]:
    """Which process serves a room: with Redis, the least-loaded live one (heartbeats and
    claims in Redis); without, this one."""
    broker = app[BROKER]
    node: Placement
    if not isinstance(broker, RedisBroker):
        node = LocalPlacement()
    else:
        engine, address = app[ENGINE], app[INTERNAL_ADDRESS]
        node = RedisPlacement(
            broker,
            load=lambda: peers_served(engine),
            rooms=lambda: rooms_served(engine),
            internal_url=lambda: address.url,
        )
    app[PLACEMENT] = node
    await node.start()
    yield
    await node.stop()


async def _apply_retention(ctx: Context) -> None:
    """Recordings and class materials leave together: neither outlives the other."""
    await recordings.apply_retention(ctx)
    await materials.apply_retention(ctx)


async def recording_manager(app: web.Application) -> AsyncIterator[None]:
    """The recording manager: every room opened from now on gets it as a listener, captures
    a crash interrupted are continued or finalized, and old recordings are deleted (hourly)."""
    ctx = Context.of(app)
    rooms = app[LIVE_ROOMS]
    mgr = RecordingManager(ctx, rooms.get)
    retention = Periodic(
        "recording-retention",
        lambda: _apply_retention(ctx),
        interval=ctx.settings.recording_retention_interval_seconds,
    )
    app[RECORDINGS] = mgr
    app[RECORDING_RETENTION] = retention
    rooms.add_listener(mgr.attach)
    # at start-up and then periodically: a capture whose worker died is continued if its room
    # reopens elsewhere within the grace, or else finalized here
    recovery = Periodic("recording-recovery", mgr.recover, interval=ctx.settings.recording_recovery_interval_seconds)
    recovery.start()
    if ctx.settings.recording_retention:
        retention.start()
    yield
    rooms.remove_listener(mgr.attach)
    await recovery.stop()
    await retention.stop()
    await mgr.close()
