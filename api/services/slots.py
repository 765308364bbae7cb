"""The slot generator: a mentor's weekly wall-clock rules and busy times -> free slots (pure, no I/O).

Rules are wall-clock ranges in the mentor's IANA zone, expanded day by day with
``zoneinfo``, so a 09:00 start stays 09:00 local on both sides of a DST change.
Across a change the wall clock is not a straight line: a time inside a
spring-forward gap does not exist (skipped), a time inside a fall-back overlap
exists twice (its first occurrence is offered). Every slot is then checked in
UTC: it lies inside its range's real span, starts ``buffer`` after the previous
slot ends, and keeps ``buffer`` from every busy interval.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Range:
    """One weekly range: ``weekday`` 0 = Monday; ``end`` may be 24:00 (written ``time(0)`` with ``to_midnight``)."""

    weekday: int
    start: time
    end: time
    to_midnight: bool = False


@dataclass(frozen=True)
class Rules:
    """What the generator needs of a mentor's availability."""

    zone: ZoneInfo
    weekly: Sequence[Range]
    slot: timedelta
    buffer: timedelta
    min_notice: timedelta
    max_ahead: timedelta
    days_off: frozenset[date]


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # aware, UTC
    ends_at: datetime


def parse_hhmm(value: str) -> tuple[time, bool]:
    """``"09:30"`` -> (09:30, False); ``"24:00"`` -> (00:00, True), the end of the day. ValueError otherwise."""
    if len(value) != 5 or value[2] != ":" or not (value[:2].isdigit() and value[3:].isdigit()):
        raise ValueError("use HH:MM (24-hour clock)")
    hours, minutes = int(value[:2]), int(value[3:])
    if hours == 24 and minutes == 0:
        return time(0), True
    if hours > 23 or minutes > 59:
        raise ValueError("not a time of day")
    return time(hours, minutes), False


def _minutes(t: time, to_midnight: bool) -> int:
    return 24 * 60 if to_midnight else t.hour * 60 + t.minute


def overlapping(ranges: Iterable[Range]) -> tuple[Range, Range] | None:
    """Two ranges of the same weekday that overlap (touching is fine), or None."""
    by_day: dict[int, list[Range]] = {}
    for r in ranges:
        by_day.setdefault(r.weekday, []).append(r)
    for day in by_day.values():
        day.sort(key=lambda r: _minutes(r.start, False))
        for a, b in zip(day, day[1:]):
            if _minutes(b.start, False) < _minutes(a.end, a.to_midnight):
                return a, b
    return None


def wall_to_utc(day: date, t: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of wall time ``t`` on ``day`` in ``zone``; None if the clock skips it.

    ``fold=0`` picks the first of two instants in a fall-back overlap; a wall time that
    does not survive the round trip through UTC lies in a spring-forward gap."""
    local = datetime.combine(day, t, tzinfo=zone)
    utc = local.astimezone(UTC)
    back = utc.astimezone(zone)
    if (back.hour, back.minute, back.date()) != (t.hour, t.minute, day):
        return None
    return utc


def _range_end_utc(day: date, r: Range, zone: ZoneInfo) -> datetime:
    """The real end of a range: its end wall time or, if the clock skips that time, the
    first wall minute after it that exists (the moment the clock jumped)."""
    end = datetime.combine(day + timedelta(days=1) if r.to_midnight else day, r.end)
    for _ in range(24 * 60):  # a gap is at most a few hours: this ends long before
        utc = wall_to_utc(end.date(), end.time(), zone)
        if utc is not None:
            return utc
        end += timedelta(minutes=1)
    raise ValueError(f"no valid wall time after {end} in {zone.key}")


def _on_the_wall(day: date, r: Range, start: datetime, end: datetime, zone: ZoneInfo) -> bool:
    """Whether every minute of [start, end) reads, on the wall clock, inside range ``r`` of ``day``.

    With one UTC offset throughout the wall clock runs straight, and the caller already
    bounded both ends. Across a change it does not: after a fall-back a slot's tail would
    read as before the range started, so those (rare) slots are walked minute by minute."""
    if start.astimezone(zone).utcoffset() == end.astimezone(zone).utcoffset():
        return True
    lo = datetime.combine(day, r.start)
    hi = datetime.combine(day + timedelta(days=1) if r.to_midnight else day, r.end)
    t = start
    while t < end:
        if not lo <= t.astimezone(zone).replace(tzinfo=None) < hi:
            return False
        t += timedelta(minutes=1)
    return True


def _candidates(rules: Rules, first: date, last: date) -> list[Slot]:
    """Each range's wall-clock steps (slot + buffer apart) that exist and fit, in UTC order."""
    zone = rules.zone
    slot_minutes = int(rules.slot.total_seconds() // 60)
    step_minutes = slot_minutes + int(rules.buffer.total_seconds() // 60)
    out: list[Slot] = []
    day = first
    while day <= last:
        if day not in rules.days_off:
            for r in (r for r in rules.weekly if r.weekday == day.weekday()):
                range_end = _range_end_utc(day, r, zone)
                end_minute = _minutes(r.end, r.to_midnight)
                minute = _minutes(r.start, False)
                while minute + slot_minutes <= end_minute:
                    start = wall_to_utc(day, time(minute // 60, minute % 60), zone)
                    minute += step_minutes
                    if start is None:
                        continue
                    end = start + rules.slot
                    if end > range_end:
                        break
                    if _on_the_wall(day, r, start, end, zone):
                        out.append(Slot(start, end))
        day += timedelta(days=1)
    out.sort(key=lambda s: s.starts_at)
    return out


def rule_slots(rules: Rules, window_start: datetime, window_end: datetime) -> list[Slot]:
    """Every slot the rules offer that starts in [window_start, window_end), busy times ignored.

    Candidates of a day before and after the window are generated too, so that whether a slot
    is offered never depends on the window it was asked for (a booking re-checks with its own)."""
    zone = rules.zone
    first = window_start.astimezone(zone).date() - timedelta(days=1)
    last = window_end.astimezone(zone).date() + timedelta(days=1)
    out: list[Slot] = []
    previous_end: datetime | None = None
    for s in _candidates(rules, first, last):
        # Touching ranges (a day's last and the next day's first, or two of one day), and wall steps
        # shortened by a spring-forward change, must not yield overlapping slots or squeeze the buffer.
        # Compared with the previous candidate, kept or not (all are equally long, so the kept ones
        # stay apart too): the verdict then never depends on where the window began.
        close = previous_end is not None and s.starts_at < previous_end + rules.buffer
        previous_end = s.ends_at
        if not close and window_start <= s.starts_at < window_end:
            out.append(s)
    return out


def free_slots(
    rules: Rules,
    busy: Sequence[tuple[datetime, datetime]],
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Slot]:
    """The free slots in [window_start, window_end): inside the rules, after the minimum notice,
    before the booking horizon, and ``buffer`` away from every busy interval."""
    earliest = max(window_start, now + rules.min_notice)
    latest = min(window_end, now + rules.max_ahead)
    if earliest >= latest:
        return []
    # Busy intervals by start, with the latest end so far: a slot clashes exactly when some
    # interval starting before its end (+ buffer) ends after its start (- buffer). One bisect
    # per slot instead of a scan of every interval (a busy mentor has hundreds in a quarter).
    ordered = sorted(busy)
    starts = [b_start for b_start, _ in ordered]
    latest_end: list[datetime] = []
    for _, b_end in ordered:
        latest_end.append(max(latest_end[-1], b_end) if latest_end else b_end)
    free = []
    for s in rule_slots(rules, earliest, latest):
        n = bisect_left(starts, s.ends_at + rules.buffer)
        if n and latest_end[n - 1] + rules.buffer > s.starts_at:
            continue
        free.append(s)
    return free
