"""Recommendations for learners, their online events, and the admin ML metrics.

The trainer and the recommender (and the retraining schedule) are built in api/lifecycle.py.
"""

from __future__ import annotations

import logging

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB, RECOMMENDER, TRAINER
from api.routing import ApiRoutes
from api.schemas.recommendations import (
    EventIn,
    EventOut,
    JobOut,
    MetricSeries,
    MlMetricsOut,
    RecOut,
    RecQuery,
    TrainIn,
)
from api.recommender import metrics
from api.recommender.training import METHODS

log = logging.getLogger(__name__)
routes = ApiRoutes("recommendations")

METRICS = ("precision", "recall", "ndcg", "coverage", "diversity")


@routes.get("/api/recommendations", query=RecQuery, response=RecOut, auth=("learner",))
async def recommendations(request: web.Request, *, query: RecQuery, user: CurrentUser) -> RecOut:
    """Sessions picked for the signed-in learner, each with a reason and a score."""
    result = await request.app[RECOMMENDER].recommend(user.id, query.limit)
    return RecOut(
        items=result.items,
        model_version=result.model_version,
        source=result.source,  # type: ignore[arg-type]
        generated_ms=round(result.elapsed_ms, 2),
    )


@routes.post("/api/recommendations/events", body=EventIn, response=EventOut, status=201, auth=("learner",))
async def events(request: web.Request, *, body: EventIn, user: CurrentUser) -> EventOut:
    """Record impressions, clicks or bookings of recommended sessions (online metrics)."""
    n = await metrics.record_events(request.app[DB], user.id, body.kind, body.session_ids, body.model_version)
    return EventOut(recorded=n)


@routes.get("/api/admin/ml-metrics", response=MlMetricsOut, auth="admin")
async def ml_metrics(request: web.Request, *, user: CurrentUser) -> MlMetricsOut:
    """Admin: model versions with offline metrics (history for charts), online CTR/conversion."""
    db = request.app[DB]
    history = await metrics.model_history(db)
    online = await metrics.online_metrics(db)
    job = request.app[TRAINER].job
    methods = {
        m: {k: [((h["metrics"].get("models") or {}).get(m) or {}).get(k) for h in history] for k in METRICS}
        for m in METHODS
    }
    series = MetricSeries(
        versions=[h["version"] for h in history],
        created_at=[h["created_at"] for h in history],
        sources=[h["metrics"].get("source") for h in history],
        training_seconds=[h["training_seconds"] for h in history],
        methods=methods,
    )
    latest = history[-1] if history else None
    return MlMetricsOut.model_validate(
        {
            "current_version": latest["version"] if latest else None,
            "serving_version": request.app[RECOMMENDER].version,
            "k": (latest["metrics"].get("k") if latest else None) or 10,
            "latest": latest,
            "history": history,
            "series": series,
            "online": online,
            "job": job.public() if job else None,
        }
    )


@routes.post("/api/admin/ml-metrics/train", body=TrainIn, response=JobOut, status=202, auth="admin")
async def train_now(request: web.Request, *, body: TrainIn, user: CurrentUser) -> JobOut:
    """Admin: train a new model version now (in the background; poll ml-metrics for the job)."""
    job = request.app[TRAINER].start(trigger="manual")
    if body.wait:
        await job.done_event.wait()
    return JobOut.model_validate(job.public())
