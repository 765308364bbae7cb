"""Issue 25 item 4: no model shape breaks serving. A model trained on an empty catalogue, on
sessions nobody booked, or before sessions (and their mentors) that appeared since, still
ranks, and anything it cannot rank becomes the popularity fallback, never a 500."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from api.models import BookingStatus, SessionStatus
from api.recommender.data import BOOKING, TrainingData
from api.recommender.model import HybridModel, Params, fit
from api.recommender.serving import Catalog, rank

NOW = 1_900_000_000.0
SMALL = Params(factors=4, iterations=2)


def data(n_items: int = 0, n_users: int = 0, bookings: list[tuple[int, int]] = ()) -> TrainingData:
    """``n_items`` sessions (ids 100.., mentors 900 and 901 alternately), ``n_users`` learners
    (ids 1..), and (user index, item index) bookings."""
    users, items = zip(*bookings) if bookings else ((), ())
    return TrainingData(
        now=NOW,
        item_ids=np.arange(100, 100 + n_items, dtype=np.int64),
        item_mentor=np.array([900 + j % 2 for j in range(n_items)], np.int64),
        item_domain=["Programming"] * n_items,
        item_skills=[["Python"]] * n_items,
        item_title=[f"Python session {j}" for j in range(n_items)],
        item_text=["async python"] * n_items,
        item_created=np.full(n_items, NOW - 86400.0),
        item_starts=np.full(n_items, NOW + 86400.0),
        item_valid=np.ones(n_items, bool),
        item_capacity=np.full(n_items, 10, np.int64),
        item_seats=np.zeros(n_items, np.int64),
        mentor_names={900: "A", 901: "B"},
        user_ids=np.arange(1, 1 + n_users, dtype=np.int64),
        user_interests=[["Python"]] * n_users,
        inter_user=np.array(users, np.int64),
        inter_item=np.array(items, np.int64),
        inter_ts=np.full(len(users), NOW - 3600.0),
        inter_weight=np.ones(len(users), np.float32),
        inter_kind=np.full(len(users), BOOKING, np.int8),
    )


def row(sid: int, mentor: int, title: str = "Rust for beginners") -> tuple:
    """A session row as the catalogue syncs it (serving.SESSION_COLUMNS)."""
    starts = datetime.fromtimestamp(NOW + 2 * 86400, timezone.utc)
    return (sid, mentor, "Systems", ["Rust"], title, "ownership", [], SessionStatus.scheduled, 5, 0, starts, starts)


def catalog(training: TrainingData, new_rows: list[tuple] = ()) -> Catalog:
    cat = Catalog(fit(training, SMALL))
    cat.apply([row(int(i), int(m), "Python") for i, m in zip(training.item_ids, training.item_mentor)])
    cat.apply(list(new_rows))
    return cat


def ranked(cat: Catalog, *, interests=(), bookings=(), follows=()) -> list[int]:
    ids, reasons, scores = rank(cat, 1, list(interests), list(bookings), [], set(follows), set(), 10, NOW)
    assert len(ids) == len(reasons) == len(scores)
    return ids


SHAPES = {
    "empty catalogue": (data(), []),
    "empty catalogue, then a first session by a new mentor": (data(), [row(5, 77)]),
    "sessions, no learners, no bookings": (data(n_items=4), []),
    "learners but no bookings": (data(n_items=4, n_users=3), []),
    "bookings, then sessions by a new mentor since training": (
        data(n_items=4, n_users=3, bookings=[(0, 0), (1, 1), (2, 0)]),
        [row(5, 77), row(6, 78)],
    ),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
def test_every_model_shape_ranks(shape: str) -> None:
    training, new_rows = SHAPES[shape]
    cat = catalog(training, new_rows)
    open_ids = {int(i) for i, ok in zip(cat.model.item_ids, cat.open) if ok}
    booked_at = datetime.fromtimestamp(NOW - 60, timezone.utc)
    history = [(sid, booked_at, BookingStatus.confirmed) for sid in sorted(open_ids)[:1]]
    for kwargs in ({}, {"interests": ["Rust"]}, {"bookings": history}, {"follows": [77, 900, 12345]}):
        assert set(ranked(cat, **kwargs)) <= open_ids, kwargs
    assert len(ranked(cat, interests=["Python"])) == len(open_ids) or len(open_ids) > 10


def test_an_empty_model_survives_the_disk_and_its_first_sessions(tmp_path) -> None:
    path = tmp_path / "model.npz"
    fit(data(), SMALL).save(path)
    cat = Catalog(HybridModel.load(path))
    cat.apply([row(5, 77), row(6, 77, "Rust advanced")])
    assert set(ranked(cat, interests=["Rust"])) == {5, 6}
    assert set(ranked(cat)) == {5, 6}  # cold start: priors alone
