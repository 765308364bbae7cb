"""Mentors' availability rules and the free slots they offer (``api.services.slots`` computes them).

A mentor keeps one rule set (``MentorAvailability``): weekly wall-clock ranges in
their IANA zone, slot length, price, buffer, minimum notice, booking horizon and
dates off. Slots are never stored: they are the rules minus the mentor's
scheduled and live sessions (published classes and booked slots alike), so a
slot disappears the moment anything else takes that time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.models import Role, Session, SessionStatus, User
from api.models_scheduling import MentorAvailability
from api.schemas.scheduling import AvailabilityIn, AvailabilityOut, SlotOut, SlotPage, WeeklyRange
from api.services import slots
from api.services.errors import Forbidden, Invalid, NotFound
from api.settings import Settings

BUSY = (SessionStatus.scheduled, SessionStatus.live)
# One query may span at most this much (a quarter); the horizon itself is at most a year.
MAX_WINDOW = timedelta(days=92)
# Sessions are at most a day long (catalog's limit is far below): look this far back for overlaps.
LONGEST_SESSION = timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def zone_of(name: str, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone ``name``; 400 for anything zoneinfo does not know (or a path)."""
    try:
        if not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise Invalid("Unknown time zone.", fields={field: f"unknown time zone {name!r}"}) from exc


def parse_instant(value: str, field: str) -> datetime:
    """An RFC 3339 date-time as aware UTC (no offset: read as UTC); 400 for anything else,
    including instants the system cannot represent (year 1 minus an offset, say)."""
    text = value.strip().upper()
    if "T" not in text or len(text) < 16:
        raise Invalid("Give a date and time (ISO 8601).", fields={field: "not a date-time"})
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Invalid("Give a date and time (ISO 8601).", fields={field: "not a valid date-time"}) from exc


def _ranges(weekly: list[WeeklyRange] | list[dict[str, object]]) -> list[slots.Range]:
    out = []
    for i, item in enumerate(weekly):
        r = item if isinstance(item, WeeklyRange) else WeeklyRange.model_validate(item)
        start, start_is_midnight = slots.parse_hhmm(r.start)
        end, to_midnight = slots.parse_hhmm(r.end)
        if start_is_midnight or (not to_midnight and end <= start):
            raise Invalid("A range must end after it starts.", fields={f"weekly.{i}": "end must be after start"})
        out.append(slots.Range(r.weekday, start, end, to_midnight))
    return out


def rules_of(row: MentorAvailability) -> slots.Rules:
    """The generator's view of a stored rule set."""
    return slots.Rules(
        zone=zone_of(row.time_zone),
        weekly=_ranges(row.weekly),
        slot=timedelta(minutes=row.slot_minutes),
        buffer=timedelta(minutes=row.buffer_minutes),
        min_notice=timedelta(hours=row.min_notice_hours),
        max_ahead=timedelta(days=row.max_days_ahead),
        days_off=frozenset(date.fromisoformat(d) for d in row.days_off),
    )


def to_out(mentor_id: int, row: MentorAvailability | None, default_zone: str = "UTC") -> AvailabilityOut:
    if row is None:
        return AvailabilityOut(
            mentor_id=mentor_id,
            configured=False,
            time_zone=default_zone,
            weekly=[],
            slot_minutes=60,
            price_cents=0,
            currency="USD",
            buffer_minutes=0,
            min_notice_hours=12,
            max_days_ahead=60,
            days_off=[],
        )
    return AvailabilityOut(
        mentor_id=mentor_id,
        configured=True,
        time_zone=row.time_zone,
        weekly=[WeeklyRange.model_validate(w) for w in row.weekly],
        slot_minutes=row.slot_minutes,
        price_cents=row.price_cents,
        currency=row.currency,
        buffer_minutes=row.buffer_minutes,
        min_notice_hours=row.min_notice_hours,
        max_days_ahead=row.max_days_ahead,
        days_off=list(row.days_off),
    )


async def active_mentor(s: AsyncSession, mentor_id: int) -> User:
    """The mentor, if this id is an active mentor's; 404 otherwise (no hint which)."""
    user = await s.get(User, mentor_id)
    if user is None or user.role != Role.mentor or not user.is_active:
        raise NotFound.of("mentor")
    return user


def takes_bookings(mentor: User, settings: Settings) -> bool:
    """Whether learners may book this mentor: as for publishing a class, the mentor's e-mail
    must be confirmed (they take payments) when the platform requires it."""
    return mentor.email_verified_at is not None or not settings.require_verified_email


async def get_rules(db: Database, mentor_id: int) -> AvailabilityOut:
    """A mentor's rules as anyone may see them (404 for an unknown or inactive mentor)."""
    async with db.read() as s:
        mentor = await active_mentor(s, mentor_id)
        return to_out(mentor_id, await s.get(MentorAvailability, mentor_id), mentor.timezone)


def _validated(data: AvailabilityIn) -> tuple[list[str], list[dict[str, object]]]:
    zone_of(data.time_zone)
    ranges = _ranges(data.weekly)
    clash = slots.overlapping(ranges)
    if clash is not None:
        day = clash[0].weekday
        raise Invalid(
            "Two ranges of the same day overlap.",
            code="overlapping_ranges",
            fields={"weekly": f"ranges overlap on weekday {day}"},
        )
    days: set[str] = set()
    for i, d in enumerate(data.days_off):
        try:
            days.add(date.fromisoformat(d).isoformat())
        except ValueError as exc:
            raise Invalid("A day off is not a date.", fields={f"days_off.{i}": "not a calendar date"}) from exc
    weekly = sorted(
        ({"weekday": r.weekday, "start": r.start, "end": r.end} for r in data.weekly),
        key=lambda w: (w["weekday"], w["start"]),
    )
    return sorted(days), list(weekly)


async def set_rules(db: Database, mentor_id: int, role: str, data: AvailabilityIn) -> AvailabilityOut:
    """Replace the mentor's rules (400 for an unknown zone, a bad range, overlapping ranges,
    an impossible day off). Booked classes stay booked whatever the new rules say."""
    if role != Role.mentor.value:
        raise Forbidden("Only mentors publish availability.")
    days_off, weekly = _validated(data)
    async with db.write() as s:
        row = await s.get(MentorAvailability, mentor_id)
        if row is None:
            row = MentorAvailability(mentor_id=mentor_id)
            s.add(row)
        row.time_zone = data.time_zone
        row.weekly = weekly
        row.slot_minutes = data.slot_minutes
        row.price_cents = data.price_cents
        row.currency = data.currency
        row.buffer_minutes = data.buffer_minutes
        row.min_notice_hours = data.min_notice_hours
        row.max_days_ahead = data.max_days_ahead
        row.days_off = days_off
        row.updated_at = utcnow()
        await s.flush()
        return to_out(mentor_id, row)


async def busy_times(
    s: AsyncSession, mentor_id: int, start: datetime, end: datetime, exclude_session: int | None = None
) -> list[tuple[datetime, datetime]]:
    """The mentor's scheduled and live sessions near [start, end), as UTC intervals
    (``exclude_session``: a class being moved does not block its own new time)."""
    conds = [
        Session.mentor_id == mentor_id,
        Session.status.in_(BUSY),
        Session.starts_at < end,
        Session.starts_at > start - LONGEST_SESSION,
    ]
    if exclude_session is not None:
        conds.append(Session.id != exclude_session)
    rows = (await s.execute(select(Session.starts_at, Session.duration_min).where(*conds))).all()
    return [(starts, starts + timedelta(minutes=minutes)) for starts, minutes in rows]


def window(from_: str, to: str) -> tuple[datetime, datetime]:
    """The query window, validated: both instants, in order, at most ``MAX_WINDOW`` apart."""
    start, end = parse_instant(from_, "from"), parse_instant(to, "to")
    if end <= start:
        raise Invalid("'to' must be after 'from'.", fields={"to": "must be after from"})
    if end - start > MAX_WINDOW:
        raise Invalid(f"Ask for at most {MAX_WINDOW.days} days at a time.", fields={"to": "window too long"})
    return start, end


async def free_in(
    s: AsyncSession,
    row: MentorAvailability,
    start: datetime,
    end: datetime,
    now: datetime,
    exclude_session: int | None = None,
) -> list[slots.Slot]:
    """The free slots of ``row``'s mentor in [start, end), as seen in transaction ``s``."""
    rules = rules_of(row)
    busy = await busy_times(
        s, row.mentor_id, start - rules.slot - rules.buffer, end + rules.buffer, exclude_session=exclude_session
    )
    return slots.free_slots(rules, busy, start, end, now)


async def list_slots(
    db: Database, settings: Settings, mentor_id: int, from_: str, to: str, now: datetime | None = None
) -> SlotPage:
    """Free slots of an active mentor between two instants (empty if they set no rules, or
    cannot take bookings yet)."""
    start, end = window(from_, to)
    async with db.read() as s:
        mentor = await active_mentor(s, mentor_id)
        row = await s.get(MentorAvailability, mentor_id)
        if row is None or not takes_bookings(mentor, settings):
            return SlotPage(items=[], time_zone=mentor.timezone)
        found = await free_in(s, row, start, end, now or utcnow())
        return SlotPage(
            items=[
                SlotOut(starts_at=x.starts_at, ends_at=x.ends_at, price_cents=row.price_cents, currency=row.currency)
                for x in found
            ],
            time_zone=row.time_zone,
        )
