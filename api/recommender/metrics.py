"""The recommender's numbers: online events (impression / click / book) of the carousel,
CTR and conversion from them, and the stored model versions with their offline metrics."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select

from api.models import Session, utcnow
from api.recommender.tables import RecEvent, RecModel


async def record_events(db: Any, user_id: int, kind: str, session_ids: list[int], model_version: int | None) -> int:
    """Store one event per existing session id; unknown ids are ignored. Returns how many."""
    ids = sorted(set(session_ids))
    async with db.write() as s:
        existing = set((await s.scalars(select(Session.id).where(Session.id.in_(ids)))).all())
        rows = [
            {
                "user_id": user_id,
                "session_id": sid,
                "kind": kind,
                "model_version": model_version,
                "created_at": utcnow(),
            }
            for sid in ids
            if sid in existing
        ]
        if rows:
            await s.execute(insert(RecEvent), rows)
    return len(rows)


async def online_metrics(db: Any, days: int = 30) -> dict[str, Any]:
    """CTR = clicks / impressions, conversion = books / impressions, counting each
    (learner, session, version) once per kind so reloads do not inflate impressions."""
    pairs = select(RecEvent.kind, RecEvent.model_version, RecEvent.user_id, RecEvent.session_id).distinct().subquery()
    since = utcnow() - timedelta(days=days)
    day = func.date(RecEvent.created_at)
    async with db.read() as s:
        by_version = (
            await s.execute(
                select(pairs.c.model_version, pairs.c.kind, func.count()).group_by(pairs.c.model_version, pairs.c.kind)
            )
        ).all()
        daily = (
            await s.execute(
                select(day, RecEvent.kind, func.count())
                .where(RecEvent.created_at >= since)
                .group_by(day, RecEvent.kind)
                .order_by(day)
            )
        ).all()
    versions: dict[Any, Counter[str]] = {}
    for v, kind, n in by_version:
        versions.setdefault(v, Counter())[kind] += int(n)
    total: Counter[str] = Counter()
    for c in versions.values():
        total.update(c)

    def rates(c: Counter[str]) -> dict[str, Any]:
        imp = c["impression"]
        return {
            "impressions": imp,
            "clicks": c["click"],
            "books": c["book"],
            "ctr": round(c["click"] / imp, 4) if imp else None,
            "conversion": round(c["book"] / imp, 4) if imp else None,
        }

    series: dict[str, Counter[str]] = {}
    for d, kind, n in daily:
        series.setdefault(str(d)[:10], Counter())[kind] += int(n)
    return {
        "totals": rates(total),
        "by_version": [
            {"model_version": v, **rates(c)}
            for v, c in sorted(versions.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ],
        "daily": [{"date": d, **rates(c)} for d, c in sorted(series.items())],
    }


async def model_history(db: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Stored versions, oldest first (the ML tab plots these)."""
    async with db.read() as s:
        rows = (await s.scalars(select(RecModel).order_by(RecModel.version.desc()).limit(limit))).all()
    out = []
    for m in reversed(rows):
        out.append(
            {
                "version": m.version,
                "created_at": m.created_at,
                "trigger": m.trigger,
                "training_seconds": round(m.training_seconds, 3),
                "n_users": m.n_users,
                "n_items": m.n_items,
                "n_interactions": m.n_interactions,
                "params": m.params,
                "metrics": m.metrics,
            }
        )
    return out
