"""Serving recommendations to learners from the trained model held in memory.

``Recommender.recommend`` scores every session of the in-memory catalogue for
one learner (content profile + folded-in CF factors + popularity prior, see
model), drops what must never be shown (booked, full, past, cancelled,
draft, their own), diversifies across mentors and domains, explains each pick,
and re-checks the short list against the database so exclusions hold exactly.
Until a model exists it serves a popularity + interest fallback; it never fails
because the model is missing. Online events and the admin metrics are ``metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import func, select

from api.models import (
    Booking,
    BookingStatus,
    Feedback,
    Follow,
    Session,
    SessionStatus,
    User,
    utcnow,
)
from api.recommender.model import (
    HybridModel,
    Params,
    decay,
    diversify,
    interest_terms,
    item_terms,
    words,
)
from api.recommender.tables import RecModel
from api.recommender.training import profiles
from api.schemas.recommendations import RecItem

log = logging.getLogger(__name__)

SYNC_EVERY_SECONDS = 2.0  # catalogue changes are pulled at most this often per process
VERSION_CHECK_SECONDS = 30.0  # another process may have trained a newer version


@dataclass
class RecList:
    items: list[RecItem]
    model_version: int | None
    source: str  # "model" | "fallback"
    elapsed_ms: float = 0.0


def short(title: str, n: int = 48) -> str:
    return title if len(title) <= n else title[: n - 1].rstrip() + "…"


# --------------------------------------------------------------------------- catalogue


@dataclass
class Catalog:
    """The model plus the live state of every session (open, starts, seats), kept in sync
    with the database by ``updated_at``; sessions newer than the model are appended."""

    model: HybridModel
    open: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    synced_at: datetime = datetime(1970, 1, 1, tzinfo=timezone.utc)
    checked: float = 0.0

    def apply(self, rows: list[Any]) -> None:
        """Upsert session rows (id, mentor_id, domain, skills, title, description, curriculum,
        status, capacity, seats_taken, starts_at, updated_at)."""
        new = [r for r in rows if int(r[0]) not in self.model.item_index]
        if new:
            self.model = self.model.with_items(
                [int(r[0]) for r in new],
                [int(r[1]) for r in new],
                [r[2] or "" for r in new],
                [r[4] or "" for r in new],
                [
                    item_terms(r[2] or "", list(r[3] or []), r[4] or "", (r[5] or "") + " " + " ".join(r[6] or []))
                    for r in new
                ],
            )
        n = self.model.n_items
        if len(self.open) < n:
            self.open = np.concatenate([self.open, np.zeros(n - len(self.open), bool)])
            self.starts = np.concatenate([self.starts, np.zeros(n - len(self.starts))])
        for r in rows:
            j = self.model.item_index[int(r[0])]
            self.open[j] = r[7] == SessionStatus.scheduled and r[9] < r[8]
            self.starts[j] = r[10].timestamp()
            if r[11] is not None and r[11] > self.synced_at:
                self.synced_at = r[11]


SESSION_COLUMNS = (
    Session.id,
    Session.mentor_id,
    Session.domain,
    Session.skills,
    Session.title,
    Session.description,
    Session.curriculum,
    Session.status,
    Session.capacity,
    Session.seats_taken,
    Session.starts_at,
    Session.updated_at,
)


# --------------------------------------------------------------------------- service


class Recommender:
    """Holds the current model in memory and answers ``recommend`` for learners."""

    def __init__(
        self, db: Any, trainer: Any, *, first_request_wait: float = 2.0, sync_every: float = SYNC_EVERY_SECONDS
    ) -> None:
        self.db = db
        self.trainer = trainer
        self.first_request_wait = first_request_wait
        self.sync_every = sync_every
        self.catalog: Catalog | None = None
        self._lock = asyncio.Lock()
        self._version_checked = 0.0

    @property
    def version(self) -> int | None:
        return self.catalog.model.version if self.catalog else None

    async def install(self, model: HybridModel) -> None:
        """Serve ``model`` from now on (called by the trainer, or after loading a file)."""
        cat = Catalog(model)
        async with self.db.read() as s:
            rows = (await s.execute(select(*SESSION_COLUMNS))).all()
        cat.apply(rows)
        cat.checked = time.monotonic()
        self.catalog = cat
        log.info("recommender: serving model v%s (%d sessions)", model.version, model.n_items)

    async def _current(self) -> Catalog | None:
        now = time.monotonic()
        if self.catalog is None or now - self._version_checked > VERSION_CHECK_SECONDS:
            self._version_checked = now
            await self._maybe_load_newer()
        if self.catalog is None:
            job = self.trainer.start(trigger="first_request")
            try:
                await asyncio.wait_for(asyncio.shield(job.done_event.wait()), self.first_request_wait)
            except asyncio.TimeoutError:
                pass
        cat = self.catalog
        if cat is not None and now - cat.checked >= self.sync_every:
            cat.checked = now
            async with self.db.read() as s:
                rows = (
                    await s.execute(
                        select(*SESSION_COLUMNS).where(
                            (Session.updated_at >= cat.synced_at) | (Session.created_at >= cat.synced_at)
                        )
                    )
                ).all()
            cat.apply(rows)
        return cat

    async def _maybe_load_newer(self) -> None:
        """Pick up a version trained by another process (its file is in the shared data dir)."""
        async with self.db.read() as s:
            latest = await s.scalar(select(func.max(RecModel.version)))
        if latest is None or (self.version is not None and latest <= self.version):
            return
        path = self.trainer.model_path(latest)
        if not path.exists():
            return
        async with self._lock:
            if self.version is not None and latest <= self.version:
                return
            try:
                model = await asyncio.to_thread(HybridModel.load, path)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("recommender: cannot load %s: %s", path, exc)
                return
            await self.install(model)

    async def recommend(self, user_id: int, limit: int = 10) -> RecList:
        t0 = time.perf_counter()
        async with self.db.read() as s:
            user = (await s.execute(select(User.id, User.interests).where(User.id == user_id))).one()
            # Bookings with the rating the learner gave (if any), in one query.
            rows = (
                await s.execute(
                    select(Booking.session_id, Booking.created_at, Booking.status, Feedback.rating, Feedback.created_at)
                    .outerjoin(Feedback, (Feedback.session_id == Booking.session_id) & (Feedback.author_id == user_id))
                    .where(Booking.learner_id == user_id)
                )
            ).all()
            follows = set((await s.scalars(select(Follow.mentor_id).where(Follow.learner_id == user_id))).all())
        interests = [i for i in (user.interests or []) if isinstance(i, str)]
        bookings = [(r[0], r[1], r[2]) for r in rows]
        ratings = list({(r[0], r[3], r[4]) for r in rows if r[3] is not None})
        excluded = {int(b[0]) for b in bookings}
        try:
            cat = await self._current()
        except Exception:  # noqa: BLE001  # the model must never break the dashboard
            log.exception("recommender: model unavailable, serving the fallback")
            cat = None
        result = None
        if cat is not None:
            try:
                result = await self._from_model(cat, user_id, interests, bookings, ratings, follows, excluded, limit)
            except Exception:  # noqa: BLE001  # a model shape nobody foresaw: popularity, not a 500
                log.exception(
                    "recommender: model v%s failed for user %s, serving the fallback", cat.model.version, user_id
                )
        if result is None:
            result = await self._fallback(user_id, interests, excluded, limit)
        result.elapsed_ms = (time.perf_counter() - t0) * 1000
        return result

    # ---- model path ----------------------------------------------------------
    async def _from_model(
        self,
        cat: Catalog,
        user_id: int,
        interests: list[str],
        bookings: list[Any],
        ratings: list[Any],
        follows: set[int],
        excluded: set[int],
        limit: int,
    ) -> RecList:
        ids, reasons, scores = rank(
            cat, user_id, interests, bookings, ratings, follows, excluded, 2 * limit, utcnow().timestamp()
        )
        items = await self._verify(user_id, ids, reasons, scores, limit, cat)
        return RecList(items, cat.model.version, "model")

    async def _verify(
        self, user_id: int, ids: list[int], reasons: list[str], scores: list[float], limit: int, cat: Catalog | None
    ) -> list[RecItem]:
        """Re-read the short list: anything booked, full, past or no longer scheduled is dropped
        (the in-memory state may lag by a moment)."""
        if not ids:
            return []
        now = utcnow()
        mine = select(Booking.id).where(Booking.session_id == Session.id, Booking.learner_id == user_id).exists()
        async with self.db.read() as s:
            rows = {
                r[0]: r
                for r in (
                    await s.execute(
                        select(
                            Session.id,
                            Session.title,
                            Session.mentor_id,
                            User.full_name,
                            Session.domain,
                            Session.starts_at,
                            Session.price_cents,
                            Session.currency,
                            Session.capacity,
                            Session.seats_taken,
                            Session.status,
                            mine,
                        )
                        .join(User, User.id == Session.mentor_id)
                        .where(Session.id.in_(ids))
                    )
                ).all()
            }
        out: list[RecItem] = []
        for sid, reason, sc in zip(ids, reasons, scores):
            r = rows.get(sid)
            if r is None or not (
                r[10] == SessionStatus.scheduled and r[5] > now and r[9] < r[8] and not r[11] and r[2] != user_id
            ):
                if cat is not None and sid in cat.model.item_index:
                    cat.open[cat.model.item_index[sid]] = False
                continue
            out.append(
                RecItem(
                    id=sid,
                    title=r[1],
                    mentor_id=r[2],
                    mentor_name=r[3],
                    domain=r[4],
                    starts_at=r[5],
                    price_cents=r[6],
                    currency=r[7],
                    seats_left=r[8] - r[9],
                    reason=reason,
                    score=round(sc, 4),
                )
            )
            if len(out) == limit:
                break
        return out

    # ---- fallback --------------------------------------------------------------
    async def _fallback(self, user_id: int, interests: list[str], excluded: set[int], limit: int) -> RecList:
        """No model yet: upcoming open sessions by seats taken, boosted by interest matches."""
        now = utcnow()
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(
                        Session.id,
                        Session.mentor_id,
                        Session.domain,
                        Session.skills,
                        Session.title,
                        Session.seats_taken,
                    )
                    .where(
                        Session.status == SessionStatus.scheduled,
                        Session.starts_at > now,
                        Session.seats_taken < Session.capacity,
                        Session.mentor_id != user_id,
                    )
                    .order_by(Session.seats_taken.desc(), Session.starts_at)
                    .limit(500)
                )
            ).all()
        rows = [r for r in rows if r[0] not in excluded]
        want = {i: set(words(i)) for i in interests}
        scored, reasons = [], []
        for r in rows:
            text = set(words(" ".join([r[2] or "", " ".join(r[3] or []), r[4] or ""])))
            match = max(want, key=lambda i: len(want[i] & text), default=None)
            hit = match is not None and bool(want[match] & text)
            scored.append((2.0 if hit else 0.0) + float(np.log1p(r[5])))
            reasons.append(f"Matches your interest in {match}" if hit else f"Popular in {r[2]}")
        if not rows:
            return RecList([], None, "fallback")
        sc = np.array(scored)
        order = np.argsort(-sc, kind="stable")[: 8 * limit]
        pick = diversify(
            sc[order], np.array([rows[j][1] for j in order]), [rows[j][2] for j in order], 2 * limit, Params()
        )
        chosen = [int(order[k]) for k in pick]
        items = await self._verify(
            user_id,
            [rows[j][0] for j in chosen],
            [reasons[j] for j in chosen],
            [float(sc[j]) for j in chosen],
            limit,
            None,
        )
        return RecList(items, None, "fallback")


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def rank(
    cat: Catalog,
    user_id: int,
    interests: list[str],
    bookings: list[Any],
    ratings: list[Any],
    follows: set[int],
    excluded: set[int],
    n: int,
    now: float,
) -> tuple[list[int], list[str], list[float]]:
    """The in-memory part of serving: (session ids, reasons, scores), best first.

    ``bookings`` are (session_id, created_at, status) and ``ratings`` (session_id, rating,
    created_at) rows of this learner; their feedback is weighted as in training.
    """
    model = cat.model
    p = model.params
    fb: defaultdict[int, float] = defaultdict(float)  # item position -> decayed feedback weight
    for sid, created, status in bookings:
        j = model.item_index.get(int(sid))
        if j is not None and status != BookingStatus.cancelled:
            fb[j] += float(decay(now, np.array([created.timestamp()]), p.half_life_days)[0])
    for sid, rating, created in ratings:
        j = model.item_index.get(int(sid))
        if j is not None:
            w = 1.0 if rating >= 4 else (-0.75 if rating <= 2 else 0.0)
            fb[j] += w * float(decay(now, np.array([created.timestamp()]), p.half_life_days)[0])
    hist = np.array([j for j, w in fb.items() if w > 0], np.int64)
    hist_w = np.array([fb[j] for j in hist], np.float32)
    prof = profiles(model, np.zeros(len(hist), np.int64), hist, hist_w, [interests])
    m_idx = model.item_mentor_idx[hist] if len(hist) else np.zeros(0, np.int64)
    ok = m_idx >= 0
    f_idx = np.array([model.mentor_index[m] for m in follows if m in model.mentor_index], np.int64)
    uvec = model.fold_in(
        hist,
        hist_w,
        np.concatenate([m_idx[ok], f_idx]),
        np.concatenate([p.mentor_weight * hist_w[ok], np.full(len(f_idx), p.follow_weight, np.float32)]),
    )
    ex = np.array([model.item_index[i] for i in excluded if i in model.item_index], np.int64)
    mask = cat.open & (cat.starts > now) & (model.item_mentor != user_id)
    mask[ex] = False
    cand = np.flatnonzero(mask)
    if len(cand) == 0:
        return [], [], []
    parts = model.score_batch(
        prof, uvec[None, :], np.array([len(hist) > 0]), np.array([bool(interests)]), [follows], cand
    )
    score = parts["score"][0]
    top = _top(score, min(len(cand), 4 * n))
    pick = diversify(score[top], model.item_mentor[cand[top]], [model.item_domain[j] for j in cand[top]], n, p)
    chosen = cand[top[pick]]
    contrib = {k: parts[k][0][top[pick]] for k in ("content", "cf", "prior", "follow")}
    reasons = explain(model, chosen, contrib, hist, interests, follows)
    return ([int(model.item_ids[j]) for j in chosen], reasons, [float(x) for x in score[top[pick]]])


def explain(
    model: HybridModel,
    chosen: np.ndarray,
    contrib: dict[str, np.ndarray],
    hist: np.ndarray,
    interests: list[str],
    follows: set[int],
) -> list[str]:
    """One short reason per item, from the signal that contributed most to its score."""
    reasons = []
    hist_dense = model.content.dense(hist) if len(hist) else None
    int_vecs = {i: model.vectorizer.vector(interest_terms([i])) for i in interests}
    for n, j in enumerate(chosen):
        x = model.content.dense(np.array([j]))[0]
        mentor = int(model.item_mentor[j])
        best = max(("content", "cf", "prior"), key=lambda k: contrib[k][n])
        if mentor in follows and contrib["follow"][n] > 0 and best != "content":
            reasons.append("From a mentor you follow")
            continue
        interest, i_sim = None, 0.0
        for i, v in int_vecs.items():
            sim = float(v @ x)
            if sim > i_sim:
                interest, i_sim = i, sim
        h_title, h_sim = None, 0.0
        if hist_dense is not None:
            sims = hist_dense @ x
            if best == "cf":  # collaborative: the booked session closest in factor space
                f = model.item_factors[hist] @ (
                    model.item_factors[j] + model.mentor_factors[max(model.item_mentor_idx[j], 0)]
                )
                sims = sims + f / (np.abs(f).max() or 1.0)
            k = int(np.argmax(sims))
            h_title, h_sim = model.item_title[hist[k]], float(sims[k])
        if best in ("content", "cf") and interest and (i_sim >= h_sim or best == "content" and not h_title):
            reasons.append(f"Matches your interest in {interest}")
        elif best in ("content", "cf") and h_title and h_sim > 0:
            reasons.append(f"Because you booked “{short(h_title)}”")
        elif mentor in follows:
            reasons.append("From a mentor you follow")
        elif best == "cf":
            reasons.append("Learners like you booked this")
        else:
            reasons.append(f"Popular in {model.item_domain[j]}")
    return reasons
