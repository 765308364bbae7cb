"""Training and offline evaluation of the recommender, and the job that runs them.

``evaluate`` replays a time split: fit on feedback before a cutoff, rank the
sessions open at the cutoff, compare with what learners booked after it, for the
hybrid, its two halves and the popularity and random baselines.
``train`` fits the serving model on everything and evaluates it; ``Trainer`` runs
that off the event loop, stores a versioned ``rec_models`` row and a model file,
and hands the model to serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from api.models import Booking, BookingStatus, Feedback, Follow, Role, Session, SessionStatus, User, utcnow
from api.recommender.tables import RecModel
from api.recommender import synthetic
from api.recommender.data import BOOKING, RATING, TrainingData
from api.recommender.model import (
    HybridModel,
    Params,
    booking_velocity,
    decay,
    diversify,
    fit,
    interest_terms,
)

log = logging.getLogger(__name__)

METHODS = ("hybrid", "content", "collaborative", "popularity", "random")
# Below this many learners with post-cutoff bookings, the live split says nothing:
# the stored evaluation then runs on a synthetic marketplace instead (and says so).
MIN_TEST_USERS = 30


# --------------------------------------------------------------------------- features per user


def user_feedback(data: TrainingData, p: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user index, item index, strength) aggregated per pair, decayed, never negative."""
    w = data.inter_weight * decay(data.now, data.inter_ts, p.half_life_days)
    key = data.inter_user * data.n_items + data.inter_item
    uniq, inv = np.unique(key, return_inverse=True)
    agg = np.maximum(np.bincount(inv, weights=w), 0.0).astype(np.float32)
    return (uniq // data.n_items).astype(np.int64), (uniq % data.n_items).astype(np.int64), agg


def profiles(
    model: HybridModel, pos: np.ndarray, items: np.ndarray, weights: np.ndarray, interests: list[list[str]]
) -> np.ndarray:
    """Content profiles (B × vocab): history of sessions (weighted) plus declared interests."""
    n = len(interests)
    hist = np.zeros((n, model.content.n_cols), np.float32)
    if len(items):
        rpos, cols, vals = model.content.gather(items)
        np.add.at(hist, (pos[rpos], cols), vals * weights[rpos])
    norms = np.linalg.norm(hist, axis=1, keepdims=True)
    hist = np.divide(hist, norms, out=np.zeros_like(hist), where=norms > 0)
    inter = np.stack([model.vectorizer.vector(interest_terms(i)) for i in interests]) if n else hist
    profile: np.ndarray = hist + 0.7 * inter
    return profile


# --------------------------------------------------------------------------- metrics


def ranking_metrics(
    recs: list[np.ndarray],
    relevant: list[set[int]],
    k: int,
    n_candidates: int,
    item_dense: np.ndarray,
    mentors: np.ndarray,
) -> dict[str, float]:
    """precision/recall/NDCG@k (binary gains), catalogue coverage, intra-list diversity."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    prec, rec, ndcg, ild, dm = [], [], [], [], []
    seen: set[int] = set()
    for r, rel in zip(recs, relevant):
        r = r[:k]
        hits = np.array([int(x) in rel for x in r], float)
        prec.append(hits.sum() / k)
        rec.append(hits.sum() / len(rel))
        idcg = discounts[: min(len(rel), k)].sum()
        ndcg.append(float((hits * discounts[: len(r)]).sum() / idcg))
        seen.update(int(x) for x in r)
        if len(r) > 1:
            v = item_dense[r]
            s = v @ v.T
            ild.append(1.0 - (s.sum() - np.trace(s)) / (len(r) * (len(r) - 1)))
            dm.append(len(set(mentors[r].tolist())) / len(r))

    def mean(xs: list[float]) -> float:
        return float(np.mean(xs)) if xs else 0.0

    return {
        "precision": mean(prec),
        "recall": mean(rec),
        "ndcg": mean(ndcg),
        "coverage": len(seen) / max(n_candidates, 1),
        "diversity": mean(ild),
        "distinct_mentors": mean(dm),
    }


def evaluate(
    data: TrainingData,
    params: Params | None = None,
    *,
    k: int = 10,
    test_fraction: float = 0.2,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Time split at the (1 - test_fraction) quantile of booking times; metrics per method."""
    p = params or Params()
    book = data.inter_kind == BOOKING
    if book.sum() < 2:
        return {"k": k, "split": {"test_users": 0}, "models": {}}
    cutoff = float(np.quantile(data.inter_ts[book], 1 - test_fraction))
    train = data.before(cutoff)
    t_fit = time.perf_counter()
    model = fit(train, p)
    fit_seconds = time.perf_counter() - t_fit
    cand = np.flatnonzero(train.item_valid & (data.item_starts > cutoff))
    pos_of = np.full(data.n_items, -1, np.int64)
    pos_of[cand] = np.arange(len(cand))

    test = book & (data.inter_ts >= cutoff) & (pos_of[data.inter_item] >= 0)
    tu, ti = data.inter_user[test], pos_of[data.inter_item[test]]
    fu, fi, fw = user_feedback(train, p)
    seen_pairs = set(zip(fu.tolist(), fi.tolist()))
    relevant: dict[int, set[int]] = {}
    for u, c in zip(tu.tolist(), ti.tolist()):
        if (u, int(cand[c])) not in seen_pairs:
            relevant.setdefault(u, set()).add(c)
    users = np.array(sorted(relevant), np.int64)
    rng = np.random.default_rng(seed)
    if max_users and len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    if len(users) == 0 or len(cand) == 0:
        return {"k": k, "split": {"cutoff": cutoff, "test_users": 0}, "models": {}}

    item_dense = model.content.dense(cand)
    mentors = data.item_mentor[cand]
    domains = [data.item_domain[j] for j in cand]
    popularity = booking_velocity(train, p)[cand].astype(np.float64)
    follows_by_user: dict[int, set[int]] = {}
    for u, m in zip(train.follow_user.tolist(), train.follow_mentor.tolist()):
        follows_by_user.setdefault(u, set()).add(m)
    order = np.argsort(fu, kind="stable")
    fu, fi, fw = fu[order], fi[order], fw[order]
    bounds = np.searchsorted(fu, users), np.searchsorted(fu, users, side="right")

    recs: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    rel_list: list[set[int]] = []
    segments = {"cold": 0, "warm": 0}
    batch = 256
    for s in range(0, len(users), batch):
        bu = users[s : s + batch]
        lo, hi = bounds[0][s : s + batch], bounds[1][s : s + batch]
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(bu) else np.zeros(0, int)
        pos = np.repeat(np.arange(len(bu)), hi - lo)
        prof = profiles(model, pos, fi[idx], fw[idx], [train.user_interests[u] for u in bu])
        has_hist = (hi - lo) > 0
        has_int = np.array([bool(train.user_interests[u]) for u in bu])
        follows = [follows_by_user.get(int(u), set()) for u in bu]
        parts = model.score_batch(prof, model.user_factors[bu], has_hist, has_int, follows, cand, item_dense)
        mask = np.zeros((len(bu), len(cand)), bool)
        inpos = pos_of[fi[idx]]
        ok = inpos >= 0
        mask[pos[ok], inpos[ok]] = True
        for b, u in enumerate(bu.tolist()):
            segments["warm" if has_hist[b] else "cold"] += 1
            rel_list.append(relevant[u])
            allowed = ~mask[b]
            for name, sc in (
                ("content", parts["content"][b] + 1e-3 * parts["prior"][b]),
                ("collaborative", parts["cf"][b] + 1e-3 * parts["prior"][b]),
                ("popularity", popularity),
            ):
                recs[name].append(_top(np.where(allowed, sc, -np.inf), k))
            score = np.where(allowed, parts["score"][b], -np.inf)
            top = _top(score, min(len(cand), 8 * k))
            top = top[np.isfinite(score[top])]
            pick = diversify(score[top], mentors[top], [domains[t] for t in top], k, p)
            recs["hybrid"].append(top[pick])
            rnd = rng.permutation(np.flatnonzero(allowed))[:k]
            recs["random"].append(rnd)
    results = {m: ranking_metrics(recs[m], rel_list, k, len(cand), item_dense, mentors) for m in METHODS}
    return {
        "k": k,
        "split": {
            "cutoff": datetime.fromtimestamp(cutoff, timezone.utc).isoformat(),
            "train_bookings": int((train.inter_kind == BOOKING).sum()),
            "test_bookings": int(sum(len(r) for r in rel_list)),
            "test_users": len(users),
            "cold_test_users": segments["cold"],
            "candidates": int(len(cand)),
            "fit_seconds": round(fit_seconds, 3),
        },
        "models": results,
    }


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    model: HybridModel
    metrics: dict[str, Any]
    training_seconds: float
    n_users: int
    n_items: int
    n_interactions: int


def train(
    data: TrainingData,
    params: Params | None = None,
    *,
    eval_max_users: int | None = 5000,
    synthetic_fallback: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit the serving model on all data and evaluate the method on a time split.

    When the live data is too thin to evaluate (fewer than MIN_TEST_USERS learners with
    later bookings), the evaluation runs on a synthetic marketplace and is labelled so.
    """
    p = params or Params()
    t0 = time.perf_counter()
    model = fit(data, p)
    training_seconds = time.perf_counter() - t0
    metrics = evaluate(data, p, max_users=eval_max_users)
    metrics["source"] = "live"
    if metrics["split"].get("test_users", 0) < MIN_TEST_USERS and synthetic_fallback is not None:
        synth, _ = synthetic.generate(**synthetic_fallback)
        metrics = evaluate(synth, p, max_users=eval_max_users)
        metrics["source"] = "synthetic"
        metrics["note"] = (
            f"Too little live feedback for a time split (< {MIN_TEST_USERS} learners "
            "booking after the cutoff); evaluated on a synthetic marketplace of "
            f"{synthetic_fallback.get('n_users')} learners x "
            f"{synthetic_fallback.get('n_items')} sessions."
        )
    return TrainResult(
        model, metrics, training_seconds, data.n_users, data.n_items, int(len(data.inter_user) + len(data.follow_user))
    )


async def load_training_data(db: Any, now: datetime | None = None) -> TrainingData:
    """Read the catalogue, learners and feedback from the database (plain columns, no ORM rows)."""
    now = now or utcnow()
    async with db.read() as s:
        srows = (
            await s.execute(
                select(
                    Session.id,
                    Session.mentor_id,
                    Session.domain,
                    Session.skills,
                    Session.title,
                    Session.description,
                    Session.curriculum,
                    Session.created_at,
                    Session.starts_at,
                    Session.status,
                    Session.capacity,
                    Session.seats_taken,
                ).order_by(Session.id)
            )
        ).all()
        urows = (
            await s.execute(
                select(User.id, User.interests)
                .where(User.role == Role.learner, User.is_active.is_(True))
                .order_by(User.id)
            )
        ).all()
        brows = (
            await s.execute(
                select(Booking.learner_id, Booking.session_id, Booking.created_at).where(
                    Booking.status != BookingStatus.cancelled
                )
            )
        ).all()
        frows = (
            await s.execute(select(Feedback.author_id, Feedback.session_id, Feedback.rating, Feedback.created_at))
        ).all()
        folrows = (await s.execute(select(Follow.learner_id, Follow.mentor_id, Follow.created_at))).all()
        mrows = (await s.execute(select(User.id, User.full_name).where(User.role == Role.mentor))).all()
    return build_data(now.timestamp(), srows, urows, brows, frows, folrows, dict(mrows))


def build_data(
    now: float,
    srows: list[Any],
    urows: list[Any],
    brows: list[Any],
    frows: list[Any],
    folrows: list[Any],
    mentor_names: dict[int, str],
) -> TrainingData:
    item_ids = np.array([r[0] for r in srows], np.int64)
    item_pos = {int(i): n for n, i in enumerate(item_ids)}
    user_ids = np.array([r[0] for r in urows], np.int64)
    user_pos = {int(u): n for n, u in enumerate(user_ids)}
    iu, ii, its, iw, ik, ir = [], [], [], [], [], []
    for learner, sess, created in brows:
        if learner in user_pos and sess in item_pos:
            iu.append(user_pos[learner])
            ii.append(item_pos[sess])
            its.append(created.timestamp())
            iw.append(1.0)
            ik.append(BOOKING)
            ir.append(0)
    for author, sess, rating, created in frows:
        if author in user_pos and sess in item_pos:
            iu.append(user_pos[author])
            ii.append(item_pos[sess])
            its.append(created.timestamp())
            iw.append(1.0 if rating >= 4 else (-0.75 if rating <= 2 else 0.0))
            ik.append(RATING)
            ir.append(rating)
    fu, fm, ft = [], [], []
    for learner, mentor, created in folrows:
        if learner in user_pos:
            fu.append(user_pos[learner])
            fm.append(mentor)
            ft.append(created.timestamp())
    invalid = {SessionStatus.draft, SessionStatus.cancelled}
    return TrainingData(
        now=now,
        item_ids=item_ids,
        item_mentor=np.array([r[1] for r in srows], np.int64),
        item_domain=[r[2] or "" for r in srows],
        item_skills=[list(r[3] or []) for r in srows],
        item_title=[r[4] or "" for r in srows],
        item_text=[(r[5] or "") + " " + " ".join(r[6] or []) for r in srows],
        item_created=np.array([r[7].timestamp() for r in srows], np.float64),
        item_starts=np.array([r[8].timestamp() for r in srows], np.float64),
        item_valid=np.array([r[9] not in invalid for r in srows], bool),
        item_capacity=np.array([r[10] for r in srows], np.int64),
        item_seats=np.array([r[11] for r in srows], np.int64),
        mentor_names=mentor_names,
        user_ids=user_ids,
        user_interests=[list(r[1] or []) for r in urows],
        inter_user=np.array(iu, np.int64),
        inter_item=np.array(ii, np.int64),
        inter_ts=np.array(its, np.float64),
        inter_weight=np.array(iw, np.float32),
        inter_kind=np.array(ik, np.int8),
        follow_user=np.array(fu, np.int64),
        follow_mentor=np.array(fm, np.int64),
        follow_ts=np.array(ft, np.float64),
        inter_rating=np.array(ir, np.int8),
    )


# --------------------------------------------------------------------------- the job


@dataclass
class Job:
    """One training run, as the admin page shows it."""

    id: int
    trigger: str
    state: str = "running"  # running | succeeded | failed
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    version: int | None = None
    error: str | None = None
    done_event: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trigger": self.trigger,
            "state": self.state,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "version": self.version,
            "error": self.error,
        }


class Trainer:
    """Runs training off the event loop, one job at a time per process, and stores each
    version (``rec_models`` row + model file under ``<data_dir>/models``)."""

    def __init__(
        self,
        db: Any,
        model_dir: Path,
        *,
        params: Params | None = None,
        eval_max_users: int | None = 3000,
        synthetic_eval: dict[str, Any] | None = None,
        on_model: Callable[[HybridModel], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.model_dir = model_dir
        self.params = params or Params()
        self.eval_max_users = eval_max_users
        self.synthetic_eval = synthetic_eval
        self.on_model = on_model
        self.job: Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._ids = 0

    def model_path(self, version: int) -> Path:
        return self.model_dir / f"rec-v{version}.npz"

    def start(self, trigger: str = "manual") -> Job:
        """Start a run unless one is already running (then that one is returned)."""
        if self.job is not None and self.job.state == "running":
            return self.job
        self._ids += 1
        self.job = Job(self._ids, trigger)
        self._task = asyncio.create_task(self._run(self.job), name=f"recsys-train-{self._ids}")
        return self.job

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self, job: Job) -> None:
        try:
            data = await load_training_data(self.db)
            result = await asyncio.to_thread(
                train, data, self.params, eval_max_users=self.eval_max_users, synthetic_fallback=self.synthetic_eval
            )
            async with self.db.write() as s:
                row = RecModel(
                    params=asdict(self.params),
                    metrics=_jsonable(result.metrics),
                    training_seconds=result.training_seconds,
                    n_users=result.n_users,
                    n_items=result.n_items,
                    n_interactions=result.n_interactions,
                    trigger=job.trigger,
                )
                s.add(row)
                await s.flush()
                version = row.version
            result.model.version = version
            await asyncio.to_thread(result.model.save, self.model_path(version))
            if self.on_model is not None:
                await self.on_model(result.model)
            job.version = version
            job.state = "succeeded"
            log.info(
                "recsys: trained v%s in %.2fs (%d learners, %d sessions)",
                version,
                result.training_seconds,
                result.n_users,
                result.n_items,
            )
        except asyncio.CancelledError:
            job.state, job.error = "failed", "cancelled"
            raise
        except Exception as exc:  # noqa: BLE001  # a failed run is reported, never fatal
            log.exception("recsys: training failed")
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
        finally:
            job.finished_at = utcnow()
            job.done_event.set()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else round(float(x), 5)
    if isinstance(x, np.integer):
        return int(x)
    return x
