"""Retraining on a clock: a new model version when the newest one is older than the interval.

With several processes, one trains per interval: each claims the interval's slot with a
``SchedulerClaim`` row, and the primary key lets only one insert win.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.db import Database
from api.models import SchedulerClaim, utcnow
from api.recommender.tables import RecModel
from api.recommender.training import Trainer


async def retrain_if_due(db: Database, trainer: Trainer, interval_seconds: float, now: datetime | None = None) -> bool:
    """Train (and wait for it) if the newest version is older than ``interval_seconds`` and
    this process wins the slot; True when it trained."""
    async with db.read() as s:
        latest = await s.scalar(select(func.max(RecModel.created_at)))
    now = now or utcnow()
    if latest is not None and now - latest <= timedelta(seconds=interval_seconds):
        return False
    slot = int(now.timestamp() // interval_seconds)
    try:
        async with db.write() as s:
            s.add(SchedulerClaim(key=f"recsys-train:{slot}"))
    except IntegrityError:
        return False  # another process has this slot
    await trainer.start(trigger="scheduled").done_event.wait()
    return True
