"""The slot generator as properties: whatever the rules, the busy times and the week (DST
changes in several zones, half-hour zones included), no slot overlaps a busy interval or
another slot, every minute of a slot lies inside one of its day's wall-clock ranges, and
the notice, horizon and days off hold."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.services import slots

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",  # +05:30, no DST
    "Australia/Adelaide",  # +09:30 / +10:30
    "Australia/Lord_Howe",  # a half-hour DST change
    "Asia/Kathmandu",  # +05:45
    "Pacific/Auckland",
    "UTC",
]
# Weeks around DST changes (both hemispheres), and a plain one.
WEEK_STARTS = [
    datetime(2027, 3, 26, tzinfo=UTC),  # EU spring forward 28 Mar
    datetime(2027, 10, 29, tzinfo=UTC),  # EU fall back 31 Oct
    datetime(2027, 3, 12, tzinfo=UTC),  # US spring forward 14 Mar
    datetime(2027, 11, 5, tzinfo=UTC),  # US fall back 7 Nov
    datetime(2027, 4, 1, tzinfo=UTC),  # Australia/NZ fall back 4 Apr
    datetime(2027, 10, 1, tzinfo=UTC),  # Australia/NZ spring forward 3 Oct
    datetime(2027, 6, 14, tzinfo=UTC),
]


@st.composite
def ranges(draw: st.DrawFn) -> list[slots.Range]:
    out: list[slots.Range] = []
    for weekday in range(7):
        minute = 0
        for _ in range(draw(st.integers(0, 3))):
            start = minute + draw(st.integers(0, 8)) * 30
            end = start + draw(st.integers(1, 12)) * 30
            if end > 24 * 60:
                break
            midnight = end == 24 * 60
            end_t = time(0) if midnight else time(end // 60, end % 60)
            out.append(slots.Range(weekday, time(start // 60, start % 60), end_t, midnight))
            minute = end
    return out


@st.composite
def scenario(draw: st.DrawFn):
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    week = draw(st.sampled_from(WEEK_STARTS))
    rules = slots.Rules(
        zone=zone,
        weekly=draw(ranges()),
        slot=timedelta(minutes=draw(st.sampled_from([30, 45, 60, 90]))),
        buffer=timedelta(minutes=draw(st.sampled_from([0, 5, 10, 15, 30]))),
        min_notice=timedelta(hours=draw(st.integers(0, 48))),
        max_ahead=timedelta(days=draw(st.integers(1, 10))),
        days_off=frozenset(
            draw(st.lists(st.sampled_from([(week + timedelta(days=i)).date() for i in range(9)]), max_size=3))
        ),
    )
    busy = [
        (week + timedelta(minutes=m), week + timedelta(minutes=m + d))
        for m, d in draw(
            st.lists(st.tuples(st.integers(0, 8 * 24 * 60), st.sampled_from([15, 30, 60, 90, 120])), max_size=8)
        )
    ]
    now = week - timedelta(hours=draw(st.integers(0, 72)))
    start = week + timedelta(hours=draw(st.integers(0, 24)))
    end = start + timedelta(days=draw(st.integers(1, 8)))
    return rules, busy, now, start, end


def inside_a_range(rules: slots.Rules, s: slots.Slot) -> bool:
    """Every 5th minute and the last minute of the slot read, on the wall clock, as inside one
    range of the slot's starting day (computed independently of the generator)."""
    day = s.starts_at.astimezone(rules.zone).date()
    spans = []
    for r in rules.weekly:
        if r.weekday != day.weekday():
            continue
        lo = datetime.combine(day, r.start)
        hi = datetime.combine(day + timedelta(days=1) if r.to_midnight else day, r.end)
        spans.append((lo, hi))
    minutes = int((s.ends_at - s.starts_at).total_seconds() // 60)
    for m in [*range(0, minutes, 5), minutes - 1]:
        wall = (s.starts_at + timedelta(minutes=m)).astimezone(rules.zone).replace(tzinfo=None)
        if not any(lo <= wall < hi for lo, hi in spans):
            return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_free_slots_properties(case) -> None:
    rules, busy, now, start, end = case
    found = slots.free_slots(rules, busy, start, end, now)
    for s in found:
        assert s.ends_at - s.starts_at == rules.slot
        assert start <= s.starts_at < end
        assert s.starts_at >= now + rules.min_notice and s.starts_at <= now + rules.max_ahead
        assert s.starts_at.astimezone(rules.zone).date() not in rules.days_off
        assert inside_a_range(rules, s), (rules.zone.key, s)
        for b_start, b_end in busy:
            assert not (s.starts_at < b_end + rules.buffer and b_start < s.ends_at + rules.buffer), (s, b_start)
    for a, b in zip(found, found[1:]):
        assert a.ends_at + rules.buffer <= b.starts_at, (rules.zone.key, a, b)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_busy_times_only_remove_slots(case) -> None:
    """Adding sessions never creates or moves a slot: the free ones are a subset of the rules' ones."""
    rules, busy, now, start, end = case
    free = set(slots.free_slots(rules, busy, start, end, now))
    assert free <= set(slots.free_slots(rules, [], start, end, now))


@settings(max_examples=200, deadline=None)
@given(scenario(), st.integers(1, 6 * 24))
def test_a_slot_does_not_depend_on_the_window_asked(case, shift_hours) -> None:
    """A booking re-checks its slot with a window of its own: the verdict must not change."""
    rules, busy, now, start, end = case
    wide = slots.free_slots(rules, busy, start, end, now)
    later = start + timedelta(hours=shift_hours)
    narrow = slots.free_slots(rules, busy, later, end, now)
    assert narrow == [s for s in wide if s.starts_at >= later]


def _wall(zone: str, items: list[slots.Slot]) -> list[str]:
    return [s.starts_at.astimezone(ZoneInfo(zone)).strftime("%a %H:%M %z") for s in items]


def _week_rules(zone: str, start: str, end: str, slot: int = 60) -> slots.Rules:
    t0, mid0 = slots.parse_hhmm(start)
    t1, mid1 = slots.parse_hhmm(end)
    return slots.Rules(
        zone=ZoneInfo(zone),
        weekly=[slots.Range(d, t0, t1, mid1) for d in range(7)],
        slot=timedelta(minutes=slot),
        buffer=timedelta(0),
        min_notice=timedelta(0),
        max_ahead=timedelta(days=30),
        days_off=frozenset(),
    )


def test_nine_in_berlin_stays_nine_across_the_change() -> None:
    rules = _week_rules("Europe/Berlin", "09:00", "10:00")
    now = datetime(2027, 3, 26, tzinfo=UTC)
    found = slots.free_slots(rules, [], now, now + timedelta(days=4), now)
    assert _wall("Europe/Berlin", found) == ["Fri 09:00 +0100", "Sat 09:00 +0100", "Sun 09:00 +0200", "Mon 09:00 +0200"]
    assert [s.starts_at.hour for s in found] == [8, 8, 7, 7]


def test_the_skipped_hour_offers_nothing_and_the_repeated_hour_once() -> None:
    spring = _week_rules("Europe/Berlin", "01:00", "04:00")
    day = datetime(2027, 3, 28, tzinfo=UTC) - timedelta(hours=1)  # Sunday 00:00 Berlin
    found = slots.free_slots(spring, [], day, day + timedelta(hours=20), day - timedelta(days=1))
    assert _wall("Europe/Berlin", found) == ["Sun 01:00 +0100", "Sun 03:00 +0200"]
    autumn = _week_rules("Europe/Berlin", "01:00", "04:00")
    day = datetime(2027, 10, 31, tzinfo=UTC) - timedelta(hours=2)
    found = slots.free_slots(autumn, [], day, day + timedelta(hours=20), day - timedelta(days=1))
    assert _wall("Europe/Berlin", found) == ["Sun 01:00 +0200", "Sun 02:00 +0200", "Sun 03:00 +0100"]


def test_half_hour_zones() -> None:
    rules = _week_rules("Asia/Kolkata", "09:30", "11:00", slot=45)
    now = datetime(2027, 1, 4, tzinfo=UTC)
    found = slots.free_slots(rules, [], now, now + timedelta(days=1), now - timedelta(days=1))
    assert [s.starts_at.strftime("%H:%M") for s in found] == ["04:00", "04:45"]
    adelaide = _week_rules("Australia/Adelaide", "09:00", "10:00")
    found = slots.free_slots(adelaide, [], now, now + timedelta(days=1), now - timedelta(days=1))
    assert [s.starts_at.strftime("%H:%M %z") for s in found] == ["22:30 +0000"]  # +10:30 in January


def test_overlapping_and_touching_ranges() -> None:
    t = slots.parse_hhmm
    a = slots.Range(0, t("09:00")[0], t("12:00")[0])
    assert slots.overlapping([a, slots.Range(0, t("11:00")[0], t("13:00")[0])]) is not None
    assert slots.overlapping([a, slots.Range(0, t("12:00")[0], t("13:00")[0])]) is None
    assert slots.overlapping([a, slots.Range(1, t("10:00")[0], t("11:00")[0])]) is None
    assert slots.parse_hhmm("24:00") == (time(0), True)
    for bad in ("24:30", "9:00", "09:60", "ab:cd"):
        try:
            slots.parse_hhmm(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
