"""The application's long-lived resources: one cleanup context per resource.

Each context creates its resource, starts it, ``yield``s while the app serves, then
stops and disposes of it. ``create_app`` lists them in start order (stops run in
reverse): the database first, the broker next (it needs the database's caches), then
what uses both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.broker import MemoryBroker, RedisBroker
from api.context import Context
from api.db import Database
from api.keys import (
    BROKER, DB, ENGINE, HUB, INTERNAL_ADDRESS, LIMITER, LIVE_ROOMS, MAIL_SENDER, MAILER, METRICS,
    PLACEMENT, RECOMMENDER, RECORDINGS, ROOM_SOCKETS, SCHEDULER, SETTINGS, TRAINER,
)
from api.live_rooms import LiveRooms, register_sfu_metrics, sfu_config
from api.mailer import mail_sender_ctx
from api.migrate import upgrade_async
from api.models import SchedulerClaim, utcnow
from api.placement import LocalPlacement, Placement, RedisPlacement, peers_served, rooms_served
from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from api.realtime import Hub
from api.recommender import serving as recs
from api.recommender.model import Params
from api.recommender.tables import RecModel
from api.recommender.training import Trainer
from api.services import recordings, scheduler as scheduler_service
from api.services.recording_manager import RecordingManager
from sfu import Engine

log = logging.getLogger(__name__)

DEFAULT_SYNTHETIC_EVAL = {"n_users": 1000, "n_items": 300, "days": 40.0, "seed": 11}


async def database(app: web.Application) -> AsyncIterator[None]:
    """Migrations (unless turned off), then the engine and its sessions."""
    settings = app[SETTINGS]
    if settings.extra.get("migrate", True):
        await upgrade_async(settings.effective_database_url)
    app[DB] = Database(settings.effective_database_url)
    yield
    await app[DB].dispose()


async def broker(app: web.Application) -> AsyncIterator[None]:
    """In-memory (one process) or Redis; the rate limiter lives where the broker does."""
    settings = app[SETTINGS]
    if settings.redis_url:
        redis_broker = RedisBroker(settings.redis_url)
        await redis_broker.start()
        app[BROKER] = redis_broker
        app[LIMITER] = RedisRateLimiter(redis_broker.redis)
    else:
        app[BROKER] = MemoryBroker()
        app[LIMITER] = MemoryRateLimiter()
    # Other processes' writes invalidate this one's read caches through the broker.
    await app[DB].caches.attach(app[BROKER])
    yield
    await app[DB].caches.detach()
    await app[BROKER].close()


async def realtime_hub(app: web.Application) -> AsyncIterator[None]:
    """The realtime hub (``GET /ws``); its sockets close in :func:`close_realtime_sockets`."""
    app[HUB] = Hub(app)
    yield


async def close_realtime_sockets(app: web.Application) -> None:
    """``on_shutdown``: close every realtime socket (aiohttp waits for open handlers)."""
    hub = app.get(HUB)
    if hub is not None:
        await hub.shutdown()


async def scheduler(app: web.Application) -> AsyncIterator[None]:
    """Reminders, settlement, expiry (api/services/scheduler.py), when enabled."""
    sched = scheduler_service.Scheduler(app)
    app[SCHEDULER] = sched
    async for _ in sched.ctx(app):
        yield


async def mail_sender(app: web.Application) -> AsyncIterator[None]:
    """Requests only queue e-mail; this loop delivers it (runs whether or not the scheduler does)."""
    async for sender in mail_sender_ctx(app[MAILER], app[DB]):
        app[MAIL_SENDER] = sender
        yield


async def recommender(app: web.Application) -> AsyncIterator[None]:
    """The trainer and the recommender; with the scheduler enabled, retraining about daily."""
    settings = app[SETTINGS]
    extra = settings.extra
    rec: recs.Recommender | None = None

    async def installed(model: object) -> None:
        assert rec is not None
        await rec.install(model)  # type: ignore[arg-type]

    trainer = Trainer(app[DB], settings.data_dir / "models",
                      params=Params.from_dict(extra.get("recsys_params")),
                      eval_max_users=extra.get("recsys_eval_max_users", 3000),
                      synthetic_eval=extra.get("recsys_synthetic_eval", DEFAULT_SYNTHETIC_EVAL),
                      on_model=installed)
    rec = recs.Recommender(app[DB], trainer,
                           first_request_wait=extra.get("recsys_first_request_wait", 2.0),
                           sync_every=extra.get("recsys_sync_seconds", recs.SYNC_EVERY_SECONDS))
    app[TRAINER] = trainer
    app[RECOMMENDER] = rec
    task = None
    if settings.scheduler_enabled:
        task = asyncio.create_task(_schedule(app, trainer), name="recsys-schedule")
    yield
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    await trainer.stop()


async def _schedule(app: web.Application, trainer: Trainer) -> None:
    """Retrain when the newest version is older than the interval; one process per slot
    (a SchedulerClaim row decides which)."""
    extra = app[SETTINGS].extra
    interval = float(extra.get("recsys_train_interval_seconds", 86400))
    check = float(extra.get("recsys_schedule_check_seconds", 600))
    await asyncio.sleep(float(extra.get("recsys_schedule_delay_seconds", 5)))
    db = app[DB]
    while True:
        try:
            async with db.read() as s:
                latest = await s.scalar(select(func.max(RecModel.created_at)))
            now = utcnow()
            if latest is None or now - latest > timedelta(seconds=interval):
                slot = int(now.timestamp() // interval)
                try:
                    async with db.write() as s:
                        s.add(SchedulerClaim(key=f"recsys-train:{slot}"))
                except IntegrityError:
                    pass  # another process has this slot
                else:
                    await trainer.start(trigger="scheduled").done_event.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  # keep the schedule alive
            log.exception("recsys: scheduled training check failed")
        await asyncio.sleep(check)


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
    redis = getattr(app[BROKER], "redis", None)
    node: Placement
    if redis is None:
        node = LocalPlacement()
    else:
        engine, address = app[ENGINE], app[INTERNAL_ADDRESS]
        node = RedisPlacement(redis, load=lambda: peers_served(engine),
                              rooms=lambda: rooms_served(engine), internal_url=lambda: address.url)
    app[PLACEMENT] = node
    await node.start()
    yield
    await node.stop()


async def _retention_loop(app: web.Application) -> None:
    interval = 3600.0
    while True:
        try:
            await recordings.apply_retention(Context.of(app))
        except Exception:  # noqa: BLE001
            log.exception("recording retention failed")
        await asyncio.sleep(interval)


async def recording_manager(app: web.Application) -> AsyncIterator[None]:
    """The recording manager (every new room gets it as a listener), start-up recovery of
    interrupted captures, and the retention loop."""
    ctx = Context.of(app)
    rooms = app[LIVE_ROOMS]
    mgr = RecordingManager(ctx, rooms.get)
    app[RECORDINGS] = mgr
    rooms.add_listener(mgr.attach)
    recovery = mgr.spawn(mgr.recover())
    retention = asyncio.ensure_future(_retention_loop(app)) if ctx.settings.extra.get(
        "recording_retention", True) else None
    yield
    rooms.remove_listener(mgr.attach)
    for task in (recovery, retention):
        if task is not None:
            task.cancel()
    await mgr.close()
    if retention is not None:
        await asyncio.gather(retention, return_exceptions=True)
