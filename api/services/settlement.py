"""Settling a class: money follows what the SFU saw (docs/money.md).

When a class ends (its mentor presses End after the start, or the scheduler
finds it over), one transaction decides every confirmed booking from the
attendance intervals (``api.services.attendance``):

* The class **took place** if the mentor's peer was in the room and either a
  learner joined too, or the mentor waited at least ``no_show_wait_minutes``
  (capped at the duration) after the start. The session completes; a learner
  whose peer joined is ``attended``; one who never joined is a ``no_show``:
  no refund, the mentor is paid (they kept the slot and waited).
* Otherwise (the mentor never started, or left before waiting with nobody
  there) the class **did not take place**: the session is cancelled, every
  learner refunded in full, the mentor paid nothing.

The mentor's share of an attended / no-show booking stays in
``mentor:{id}:pending`` until ``earnings_release_at`` (the end plus
``earnings_hold_hours``); :func:`release_due` (scheduler) then moves it to
``available``, except while the learner's problem report is open
(``api.services.reports``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import (
    Booking,
    BookingReport,
    BookingStatus,
    Notification,
    ReportStatus,
    Session,
    SessionStatus,
)
from api.services import attendance, ledger, notifications, session_state
from api.services.errors import Conflict, NotFound
from api.services.payments import provider
from api.services.settings_store import get_all as platform_settings

S = SessionStatus
# Reports that keep a booking's earnings from being released.
HOLDING_REPORTS = (ReportStatus.open, ReportStatus.refunded)


def utcnow() -> datetime:
    return datetime.now(UTC)


def too_early() -> Conflict:
    return Conflict("A class cannot be ended before its start time.", code="too_early")


@dataclass
class Settlement:
    """What settling one session decided."""

    session: Session
    took_place: bool
    attended: list[int] = field(default_factory=list)
    no_show: list[int] = field(default_factory=list)
    refunded: list[int] = field(default_factory=list)
    notes: list[Notification] = field(default_factory=list)


@dataclass(frozen=True)
class Rules:
    hold: timedelta
    no_show_wait: timedelta

    @classmethod
    async def load(cls, ctx: Context) -> Rules:
        values = await platform_settings(ctx.db)
        return cls(
            timedelta(hours=int(values["earnings_hold_hours"])), timedelta(minutes=int(values["no_show_wait_minutes"]))
        )


async def settle_in(s: AsyncSession, session_id: int, rules: Rules, now: datetime) -> Settlement:
    """Inside a write transaction: end session ``session_id`` at ``now`` and settle its bookings.

    409 ``too_early`` before its start; 409 ``invalid_status`` unless it is scheduled or live."""
    sess = await s.get(Session, session_id)
    if sess is None:
        raise NotFound.of("session")
    if sess.status not in (S.scheduled, S.live):
        raise session_state.InvalidTransition(sess.status, S.completed)
    if now < sess.starts_at:
        raise too_early()
    await attendance.close_all(s, session_id, now)
    seen = await attendance.presence(s, session_id, since=sess.starts_at, until=now)
    booked = list(
        (
            await s.scalars(
                select(Booking)
                .where(Booking.session_id == session_id, Booking.status == BookingStatus.confirmed)
                .order_by(Booking.id)
            )
        ).all()
    )
    wait = min(rules.no_show_wait, timedelta(minutes=sess.duration_min))
    took_place = seen.was_there(sess.mentor_id) and (
        any(seen.was_there(b.learner_id) for b in booked) or seen.connected_for(sess.mentor_id) >= wait
    )
    sess = await session_state.transition(s, session_id, S.completed if took_place else S.cancelled, now=now)
    out = Settlement(sess, took_place)
    for b in booked:
        if took_place:
            await _settle_held(s, sess, b, seen.was_there(b.learner_id), rules, now, out)
        else:
            await _refund_not_held(s, sess, b, now, out)
    if not took_place:
        await s.execute(
            update(Session)
            .where(Session.id == session_id)
            .values(seats_taken=0)
            .execution_options(synchronize_session=False)
        )
    out.notes.append(_mentor_note(s, sess, out, rules))
    return out


async def _settle_held(
    s: AsyncSession, sess: Session, b: Booking, joined: bool, rules: Rules, now: datetime, out: Settlement
) -> None:
    b.status = BookingStatus.attended if joined else BookingStatus.no_show
    b.settled_at = now
    b.earnings_release_at = now + rules.hold
    if rules.hold <= timedelta(0):
        await _release(s, b, now)
    until = f"{b.earnings_release_at:%Y-%m-%d %H:%M} UTC"
    if joined:
        out.attended.append(b.id)
        out.notes.append(
            notifications.add(
                s,
                b.learner_id,
                "session.completed",
                f"Completed: {sess.title}"[:200],
                f"Something wrong with this class? Report a problem from My Sessions until {until}.",
                "/learner/sessions?view=past",
            )
        )
    else:
        out.no_show.append(b.id)
        out.notes.append(
            notifications.add(
                s,
                b.learner_id,
                "session.no_show",
                f"You missed: {sess.title}"[:200],
                "The class took place without you; a no-show is not refunded. If you could not get in, "
                f"report a problem from My Sessions until {until}.",
                "/learner/sessions?view=past",
            )
        )


async def _refund_not_held(s: AsyncSession, sess: Session, b: Booking, now: datetime, out: Settlement) -> None:
    b.status = BookingStatus.cancelled
    b.cancelled_at = now
    b.settled_at = now
    journal = await ledger.record_refund(s, b.id, reference=f"session {sess.id} did not take place")
    if journal is not None:
        provider.refund(charge_reference=b.payment_ref or "", amount_cents=b.price_cents, currency=b.currency)
    out.refunded.append(b.id)
    out.notes.append(
        notifications.add(
            s,
            b.learner_id,
            "session.cancelled",
            f"Did not take place: {sess.title}"[:200],
            "The class did not take place; you get a full refund."
            if b.price_cents
            else "The class did not take place.",
            "/learner/sessions?view=past",
        )
    )


def _mentor_note(s: AsyncSession, sess: Session, out: Settlement, rules: Rules) -> Notification:
    if not out.took_place:
        return notifications.add(
            s,
            sess.mentor_id,
            "session.cancelled",
            f"Did not take place: {sess.title}"[:200],
            "Nobody was in the class long enough for it to count: every learner was refunded and nothing is paid.",
            "/mentor/sessions",
        )
    hours = int(rules.hold.total_seconds() // 3600)
    return notifications.add(
        s,
        sess.mentor_id,
        "session.completed",
        f"Completed: {sess.title}"[:200],
        f"{len(out.attended)} attended, {len(out.no_show)} no-show. Earnings become "
        f"available after the {hours} h hold.",
        "/mentor/earnings",
    )


async def settle_session(ctx: Context, session_id: int, *, now: datetime | None = None) -> Settlement:
    """End and settle one session in its own transaction, then tell everyone."""
    from api.services.catalog import push_status

    rules = await Rules.load(ctx)
    async with ctx.db.write() as s:
        out = await settle_in(s, session_id, rules, now or utcnow())
    await notifications.push(ctx.broker, out.notes)
    await push_status(ctx.broker, out.session)
    return out


# ---------------------------------------------------------------- the hold


async def _release(s: AsyncSession, b: Booking, now: datetime) -> None:
    await ledger.record_release(s, b.id)
    b.earnings_released_at = now


def _releasable(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Booking.status.in_((BookingStatus.attended, BookingStatus.no_show)),
        Booking.earnings_release_at.is_not(None),
        Booking.earnings_release_at <= now,
        Booking.earnings_released_at.is_(None),
        ~exists().where(BookingReport.booking_id == Booking.id, BookingReport.status.in_(HOLDING_REPORTS)),
    ]


async def release_due(ctx: Context, now: datetime | None = None, *, session_id: int | None = None) -> list[int]:
    """Bookings whose hold is over (and no report holds them) pay their mentor: one
    transaction per booking, idempotent across processes (the release journal's key)."""
    now = now or utcnow()
    conds = _releasable(now)
    if session_id is not None:
        conds.append(Booking.session_id == session_id)
    async with ctx.db.read() as s:
        due = list((await s.scalars(select(Booking.id).where(*conds).order_by(Booking.id))).all())
    released: list[int] = []
    paid: set[tuple[int, str]] = set()  # (mentor, currency) to tell once per pass
    for booking_id in due:
        async with ctx.db.write() as s:
            b = await s.scalar(
                select(Booking)
                .where(Booking.id == booking_id, *_releasable(now))
                .execution_options(populate_existing=True)
            )
            if b is None:
                continue  # released by another process, or reported meanwhile
            await _release(s, b, now)
            mentor_id = await s.scalar(select(Session.mentor_id).where(Session.id == b.session_id))
        released.append(booking_id)
        if mentor_id is not None and b.price_cents:
            paid.add((int(mentor_id), b.currency))
    if paid:
        notes: list[Notification] = []
        async with ctx.db.write() as s:
            for mentor_id, currency in sorted(paid):
                notes.append(
                    notifications.add(
                        s,
                        mentor_id,
                        "earnings.available",
                        "Earnings available",
                        f"The hold on your earnings ({currency}) is over: you can request a payout.",
                        "/mentor/earnings",
                    )
                )
        await notifications.push(ctx.broker, notes)
    return released
