"""When a class took place and who attended it: the written model (docs/money.md), as pure functions.

Settlement feeds this the SFU's attendance intervals and the booked terms; it
answers, per booking, ``attended`` (the mentor is paid), ``no_show`` (the mentor
is paid: they kept the slot and were there) or ``refund`` (the learner gets their
money back). Only time *after the scheduled start* counts, and what counts is the
mentor and a learner having media up **at the same time**:

* The class **was held** if the mentor and at least one learner overlapped for the
  required length: ``held_minutes``, or ``held_percent`` of the scheduled length
  if that is shorter. Mere presence (a mentor alone before the start, a learner
  alone after the mentor left) never makes a class.
* A learner **attended** if they overlapped the mentor for ``attend_minutes``
  (at most the required length). A learner who was in the room that long but
  never with the mentor was failed by the mentor: refund. A learner who did not
  come is a no-show.
* A class nobody came to still counts if the mentor waited ``no_show_wait`` after
  the start (capped at the scheduled length) and no learner connected at all:
  every learner is a no-show.
* A booking whose terms changed after the sale (moved or shortened without the
  learner's acceptance) is refunded unless the learner attended anyway.

Everything else is a class that did not take place: every learner is refunded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

Interval = tuple[datetime, datetime]

ATTENDED = "attended"
NO_SHOW = "no_show"
REFUND = "refund"


@dataclass(frozen=True)
class ClassRules:
    held_minutes: int = 20
    held_percent: int = 50
    attend_minutes: int = 5
    no_show_wait: timedelta = timedelta(minutes=10)

    def required(self, duration_min: int) -> timedelta:
        """The overlap of the mentor and a learner that makes a class."""
        return min(timedelta(minutes=self.held_minutes), timedelta(minutes=duration_min * self.held_percent / 100))

    def to_attend(self, duration_min: int) -> timedelta:
        return min(timedelta(minutes=self.attend_minutes), self.required(duration_min))

    def wait(self, duration_min: int) -> timedelta:
        return min(self.no_show_wait, timedelta(minutes=duration_min))


def clip(intervals: Iterable[Interval], since: datetime, until: datetime) -> list[Interval]:
    """The parts of ``intervals`` inside [since, until], sorted and merged (no double counting)."""
    parts = sorted((max(a, since), min(b, until)) for a, b in intervals if min(b, until) > max(a, since))
    merged: list[Interval] = []
    for a, b in parts:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def total(intervals: Iterable[Interval]) -> timedelta:
    return sum((b - a for a, b in intervals), timedelta(0))


def overlap(xs: list[Interval], ys: list[Interval]) -> timedelta:
    """How long both were connected at the same time (both lists merged and sorted)."""
    out = timedelta(0)
    i = j = 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if hi > lo:
            out += hi - lo
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


@dataclass(frozen=True)
class Verdict:
    took_place: bool
    outcome: dict[int, str]  # booking id -> attended | no_show | refund
    reason: str


def judge(
    rules: ClassRules,
    *,
    starts_at: datetime,
    ended_at: datetime,
    duration_min: int,
    mentor: Iterable[Interval],
    learners: Mapping[int, Iterable[Interval]],
    changed: frozenset[int] = frozenset(),
) -> Verdict:
    """Decide every booking of one class. ``learners`` maps booking id -> that learner's
    intervals; ``changed`` holds the bookings whose booked time or length is not the class's."""
    m = clip(mentor, starts_at, ended_at)
    seen = {bid: clip(iv, starts_at, ended_at) for bid, iv in learners.items()}
    with_mentor = {bid: overlap(m, iv) for bid, iv in seen.items()}
    alone = {bid: total(iv) for bid, iv in seen.items()}
    need, attend = rules.required(duration_min), rules.to_attend(duration_min)
    outcome: dict[int, str] = {}
    if any(ov >= need for ov in with_mentor.values()):
        reason = "held"
        for bid in seen:
            if with_mentor[bid] >= attend:
                outcome[bid] = ATTENDED
            elif alone[bid] >= attend or bid in changed:
                outcome[bid] = REFUND  # there without the mentor, or the class was moved on them
            else:
                outcome[bid] = NO_SHOW
    elif total(m) >= rules.wait(duration_min) and not any(alone.values()):
        reason = "mentor waited, nobody came"
        outcome = {bid: REFUND if bid in changed else NO_SHOW for bid in seen}
    else:
        reason = "not held"
        outcome = dict.fromkeys(seen, REFUND)
    took_place = any(v != REFUND for v in outcome.values()) or (not seen and reason != "not held")
    return Verdict(took_place, outcome, reason if took_place else "not held")
