"""Recommender benchmark: offline evaluation table, training time and serving latency.

    .venv/bin/python benchmarks/recsys_eval.py [--users 10000] [--sessions 2000]
        [--serving-sessions 10000] [--db]

Prints one JSON document: the time-split evaluation (precision/recall/NDCG@10,
coverage, diversity) of the hybrid, its content and collaborative halves, and the
popularity and random baselines on a synthetic marketplace with known tastes; the
time to fit the serving model; and the latency of ranking one learner against a
catalogue of ``--serving-sessions`` sessions (in memory; with ``--db`` also the
whole ``Recommender.recommend`` call on a SQLite database holding that catalogue).
Draws benchmarks/results/recsys_eval.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.models import BookingStatus  # noqa: E402
from api.recommender import synthetic  # noqa: E402
from api.recommender.serving import Catalog, rank  # noqa: E402
from api.recommender.data import BOOKING  # noqa: E402
from api.recommender.model import Params, fit  # noqa: E402
from api.recommender.training import METHODS, evaluate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def serving_latency(n_sessions: int, n_users: int, requests: int, seed: int) -> dict[str, object]:
    """Rank learners against a catalogue of n_sessions (all upcoming-or-past sessions known)."""
    data, _ = synthetic.generate(n_users, n_sessions, days=120.0, seed=seed)
    t0 = time.perf_counter()
    model = fit(data, Params())
    fit_s = time.perf_counter() - t0
    cat = Catalog(model)
    cat.open = np.ones(model.n_items, bool)
    cat.starts = data.item_starts.copy()
    now = data.now
    rng = np.random.default_rng(seed)
    booked = data.inter_kind == BOOKING
    lat = []
    open_now = int((cat.starts > now).sum())
    for _ in range(requests):
        u = int(rng.integers(data.n_users))
        mine = data.inter_item[booked & (data.inter_user == u)]
        rows = [
            (int(data.item_ids[j]), datetime.fromtimestamp(data.item_created[j], timezone.utc), BookingStatus.confirmed)
            for j in mine
        ]
        t = time.perf_counter()
        rank(cat, -1, data.user_interests[u], rows, [], set(), {r[0] for r in rows}, 20, now)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {
        "catalogue_sessions": n_sessions,
        "open_candidates": open_now,
        "requests": requests,
        "fit_seconds": round(fit_s, 2),
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 2),
        "max_ms": round(lat[-1], 2),
    }


async def db_latency(n_sessions: int, n_users: int, requests: int, seed: int) -> dict[str, object]:
    """The whole recommend() call (queries + ranking + re-check) on SQLite."""
    from sqlalchemy import select

    from api.db import Database
    from api.migrate import upgrade_async
    from api.models import User
    from api.recommender.serving import Recommender
    from api.recommender.training import Trainer

    tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade_async(url)
    db = Database(url)
    try:
        data, _ = synthetic.generate(n_users, n_sessions, days=120.0, seed=seed)
        await synthetic.populate(db, data, password_hash="x")
        rec: Recommender | None = None

        async def installed(model: object) -> None:
            assert rec is not None
            await rec.install(model)  # type: ignore[arg-type]

        trainer = Trainer(db, tmp / "models", eval_max_users=500, synthetic_eval=None, on_model=installed)
        rec = Recommender(db, trainer, first_request_wait=600.0)
        t0 = time.perf_counter()
        job = trainer.start("manual")
        await job.done_event.wait()
        train_s = time.perf_counter() - t0
        async with db.read() as s:
            learners = (await s.scalars(select(User.id).where(User.role == "learner"))).all()
        rng = np.random.default_rng(seed)
        lat = []
        for _ in range(requests):
            res = await rec.recommend(int(rng.choice(learners)), 10)
            lat.append(res.elapsed_ms)
        lat.sort()
        return {
            "catalogue_sessions": n_sessions,
            "learners": n_users,
            "requests": requests,
            "train_job_seconds_incl_db_load_and_eval": round(train_s, 2),
            "p50_ms": round(statistics.median(lat), 2),
            "p95_ms": round(lat[int(0.95 * len(lat)) - 1], 2),
            "max_ms": round(lat[-1], 2),
        }
    finally:
        await db.dispose()


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = report["evaluation"]["models"]
    metrics = ["precision", "recall", "ndcg", "coverage", "diversity"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    width = 0.8 / len(METHODS)
    x = np.arange(len(metrics))
    for n, m in enumerate(METHODS):
        vals = [models[m][k] for k in metrics]
        ax.bar(x + n * width - 0.4 + width / 2, vals, width, label=m)
    ax.set_xticks(x, [f"{k}@10" if k in ("precision", "recall", "ndcg") else k for k in metrics])
    ax.set_ylim(0, 1.05)
    ax.legend(ncol=5, fontsize=8, loc="upper left")
    sp = report["evaluation"]["split"]
    ax.set_title(
        f"Time-split evaluation: {report['learners']} learners x {report['sessions']} "
        f"sessions, {sp['test_users']} test learners, {sp['candidates']} open sessions"
    )
    ax2 = axes[1]
    ndcg = [models[m]["ndcg"] for m in METHODS]
    ax2.barh(METHODS, ndcg, color=[f"C{i}" for i in range(len(METHODS))])
    for i, v in enumerate(ndcg):
        ax2.text(v, i, f" {v:.3f}", va="center", fontsize=8)
    ax2.set_xlim(0, max(ndcg) * 1.3)
    ax2.set_title(f"NDCG@10 (fit {report['training_seconds']:.1f}s)")
    ax2.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--sessions", type=int, default=2_000)
    ap.add_argument("--days", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--serving-sessions", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--db", action="store_true", help="also time recommend() on SQLite")
    args = ap.parse_args()

    t = time.perf_counter()
    data, _ = synthetic.generate(args.users, args.sessions, days=args.days, seed=args.seed)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    fit(data, Params())
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    ev = evaluate(data, Params(), k=10, seed=args.seed)
    eval_s = time.perf_counter() - t
    report: dict[str, object] = {
        "learners": args.users,
        "sessions": args.sessions,
        "days": args.days,
        "bookings": data.n_bookings,
        "ratings": int((data.inter_kind != BOOKING).sum()),
        "follows": int(len(data.follow_user)),
        "generate_seconds": round(gen_s, 2),
        "training_seconds": round(train_s, 2),
        "evaluation_seconds": round(eval_s, 2),
        "params": Params().__dict__,
        "evaluation": ev,
        "serving_in_memory": serving_latency(args.serving_sessions, 2000, args.requests, args.seed),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "numpy": np.__version__},
    }
    if args.db:
        report["serving_with_db"] = asyncio.run(db_latency(args.serving_sessions, 2000, args.requests, args.seed))
    out = RESULTS / "recsys_eval.png"
    plot(report, out)
    report["plot"] = str(out)
    (RESULTS / "recsys_eval.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
