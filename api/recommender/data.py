"""The recommender's input: catalogue, learners and timestamped implicit feedback, as numpy arrays.

One plain format shared by the database loader (training), the synthetic
generator (synthetic) and the evaluation, so all three see the same thing.
Times are POSIX seconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Interaction kinds: a booking is what the evaluation predicts; ratings only reweigh.
BOOKING = 0
RATING = 1


@dataclass
class TrainingData:
    """Everything a model is fitted on; ``now`` is the instant the data describes."""

    now: float
    item_ids: np.ndarray  # int64 session ids
    item_mentor: np.ndarray  # int64 mentor user ids
    item_domain: list[str]
    item_skills: list[list[str]]
    item_title: list[str]
    item_text: list[str]  # description (+ curriculum)
    item_created: np.ndarray  # float64
    item_starts: np.ndarray  # float64
    item_valid: np.ndarray  # bool: not draft / cancelled
    item_capacity: np.ndarray  # int64
    item_seats: np.ndarray  # int64 seats taken now
    mentor_names: dict[int, str]
    user_ids: np.ndarray  # int64 learner ids
    user_interests: list[list[str]]
    inter_user: np.ndarray  # int64 index into user_ids
    inter_item: np.ndarray  # int64 index into item_ids
    inter_ts: np.ndarray  # float64
    inter_weight: np.ndarray  # float32 (rating >= 4: +1, rating <= 2: negative)
    inter_kind: np.ndarray  # int8 BOOKING | RATING
    follow_user: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # index
    follow_mentor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # mentor id
    follow_ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    inter_rating: np.ndarray | None = None  # int8 1-5 on RATING rows, 0 elsewhere

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_bookings(self) -> int:
        return int((self.inter_kind == BOOKING).sum())

    def before(self, cutoff: float) -> "TrainingData":
        """The world as it was at ``cutoff``: later feedback and not-yet-created sessions hidden.

        Items keep their indexes (so test interactions still point at them); sessions created
        after the cutoff are marked invalid rather than removed.
        """
        keep = self.inter_ts < cutoff
        fkeep = self.follow_ts < cutoff
        return TrainingData(
            now=cutoff,
            item_ids=self.item_ids,
            item_mentor=self.item_mentor,
            item_domain=self.item_domain,
            item_skills=self.item_skills,
            item_title=self.item_title,
            item_text=self.item_text,
            item_created=self.item_created,
            item_starts=self.item_starts,
            item_valid=self.item_valid & (self.item_created <= cutoff),
            item_capacity=self.item_capacity,
            item_seats=np.bincount(self.inter_item[keep & (self.inter_kind == BOOKING)], minlength=self.n_items).astype(
                np.int64
            ),
            mentor_names=self.mentor_names,
            user_ids=self.user_ids,
            user_interests=self.user_interests,
            inter_user=self.inter_user[keep],
            inter_item=self.inter_item[keep],
            inter_ts=self.inter_ts[keep],
            inter_weight=self.inter_weight[keep],
            inter_kind=self.inter_kind[keep],
            follow_user=self.follow_user[fkeep],
            follow_mentor=self.follow_mentor[fkeep],
            follow_ts=self.follow_ts[fkeep],
            inter_rating=None if self.inter_rating is None else self.inter_rating[keep],
        )
