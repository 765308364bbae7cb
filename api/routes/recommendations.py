"""Recommendations for learners, their online events, and the admin ML metrics.

``setup(app)`` creates the trainer and the recommender (app[SERVICES]["recommender"],
["recsys_trainer"]) and, when the scheduler is enabled, retrains about daily.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.auth import CurrentUser
from api.keys import DB, SERVICES, SETTINGS
from api.models import SchedulerClaim, utcnow
from api.recommender.tables import RecModel
from api.routing import ApiRoutes
from api.schemas_recommendations import (
    EventIn, EventOut, JobOut, MetricSeries, MlMetricsOut, RecOut, RecQuery, TrainIn,
)
from api.recommender import serving as recs
from api.recommender.model import Params
from api.recommender.training import METHODS, Trainer

log = logging.getLogger(__name__)
routes = ApiRoutes("recommendations")

DEFAULT_SYNTHETIC_EVAL = {"n_users": 1000, "n_items": 300, "days": 40.0, "seed": 11}
METRICS = ("precision", "recall", "ndcg", "coverage", "diversity")


def _recommender(request: web.Request) -> recs.Recommender:
    return request.app[SERVICES]["recommender"]  # type: ignore[no-any-return]


def _trainer(request: web.Request) -> Trainer:
    return request.app[SERVICES]["recsys_trainer"]  # type: ignore[no-any-return]


@routes.get("/api/recommendations", query=RecQuery, response=RecOut, auth=("learner",))
async def recommendations(request: web.Request, *, query: RecQuery, user: CurrentUser) -> RecOut:
    """Sessions picked for the signed-in learner, each with a reason and a score."""
    result = await _recommender(request).recommend(user.id, query.limit)
    return RecOut(
        items=result.items,
        model_version=result.model_version, source=result.source,  # type: ignore[arg-type]
        generated_ms=round(result.elapsed_ms, 2))


@routes.post("/api/recommendations/events", body=EventIn, response=EventOut, status=201,
             auth=("learner",))
async def events(request: web.Request, *, body: EventIn, user: CurrentUser) -> EventOut:
    """Record impressions, clicks or bookings of recommended sessions (online metrics)."""
    n = await recs.record_events(request.app[DB], user.id, body.kind, body.session_ids,
                                 body.model_version)
    return EventOut(recorded=n)


@routes.get("/api/admin/ml-metrics", response=MlMetricsOut, auth="admin")
async def ml_metrics(request: web.Request, *, user: CurrentUser) -> MlMetricsOut:
    """Admin: model versions with offline metrics (history for charts), online CTR/conversion."""
    db = request.app[DB]
    history = await recs.model_history(db)
    online = await recs.online_metrics(db)
    job = _trainer(request).job
    methods = {m: {k: [((h["metrics"].get("models") or {}).get(m) or {}).get(k) for h in history]
                   for k in METRICS} for m in METHODS}
    series = MetricSeries(versions=[h["version"] for h in history],
                          created_at=[h["created_at"] for h in history],
                          sources=[h["metrics"].get("source") for h in history],
                          training_seconds=[h["training_seconds"] for h in history],
                          methods=methods)
    latest = history[-1] if history else None
    return MlMetricsOut.model_validate({
        "current_version": latest["version"] if latest else None,
        "serving_version": _recommender(request).version,
        "k": (latest["metrics"].get("k") if latest else None) or 10,
        "latest": latest, "history": history, "series": series, "online": online,
        "job": job.public() if job else None})


@routes.post("/api/admin/ml-metrics/train", body=TrainIn, response=JobOut, status=202,
             auth="admin")
async def train_now(request: web.Request, *, body: TrainIn, user: CurrentUser) -> JobOut:
    """Admin: train a new model version now (in the background; poll ml-metrics for the job)."""
    job = _trainer(request).start(trigger="manual")
    if body.wait:
        await job.done_event.wait()
    return JobOut.model_validate(job.public())


# --------------------------------------------------------------------------- wiring

def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_recsys_ctx)


async def _recsys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    extra = settings.extra
    recommender: recs.Recommender | None = None

    async def installed(model: object) -> None:
        assert recommender is not None
        await recommender.install(model)  # type: ignore[arg-type]

    trainer = Trainer(app[DB], settings.data_dir / "models",
                      params=Params.from_dict(extra.get("recsys_params")),
                      eval_max_users=extra.get("recsys_eval_max_users", 3000),
                      synthetic_eval=extra.get("recsys_synthetic_eval", DEFAULT_SYNTHETIC_EVAL),
                      on_model=installed)
    recommender = recs.Recommender(app[DB], trainer,
                                   first_request_wait=extra.get("recsys_first_request_wait", 2.0),
                                   sync_every=extra.get("recsys_sync_seconds", recs.SYNC_EVERY_SECONDS))
    app[SERVICES]["recsys_trainer"] = trainer
    app[SERVICES]["recommender"] = recommender
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
