"""Settling a class: money follows what happened (docs/money.md).

When a class ends (its mentor presses End after the start, or the scheduler
finds it over), one transaction decides every booking from the SFU's attendance
intervals by the model in :mod:`api.services.money.class_model`: whether the
class took place (the mentor and a learner connected *at the same time*, after
the start, long enough), and for each booking ``attended`` / ``no_show`` (the
mentor's share is held, then released) or a full refund. A class that did not
take place is cancelled and every learner refunded, late cancellers included.

The mentor's share of an attended / no-show booking stays in
``mentor:{id}:pending`` until ``earnings_release_at`` (the end plus
``earnings_hold_hours``); :func:`release_due` (scheduler) then moves it to
``available``, except while the learner's problem report is open
(``api.services.reports``). A booking cancelled late (no refund) is settled
with its class: released after the hold if the class took place, refunded if
not. So every charge ends in exactly one of: released or refunded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, exists, func, select, update
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
    User,
)
from api.services import attendance, notifications, session_state
from api.services.money import charges, class_model
from api.services.errors import Conflict, NotFound
from api.services.local_time import spoken
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
    model: class_model.ClassRules

    @classmethod
    async def load(cls, ctx: Context) -> Rules:
        v = await platform_settings(ctx.db)
        return cls(
            timedelta(hours=int(v["earnings_hold_hours"])),
            class_model.ClassRules(
                held_minutes=int(v["class_held_minutes"]),
                held_percent=int(v["class_held_percent"]),
                attend_minutes=int(v["attend_minutes"]),
                no_show_wait=timedelta(minutes=int(v["no_show_wait_minutes"])),
            ),
        )


def terms_changed(b: Booking, sess: Session) -> bool:
    """The class is no longer at the time or length this learner paid for (docs/money.md)."""
    return (b.booked_starts_at is not None and b.booked_starts_at != sess.starts_at) or (
        b.booked_duration_min is not None and b.booked_duration_min != sess.duration_min
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
    by_user: dict[int, list[class_model.Interval]] = {}
    for row in await attendance.intervals(s, session_id):
        by_user.setdefault(row.user_id, []).append((row.joined_at, row.left_at or now))
    booked = list(
        (
            await s.scalars(
                select(Booking)
                .where(Booking.session_id == session_id, Booking.status == BookingStatus.confirmed)
                .order_by(Booking.id)
            )
        ).all()
    )
    verdict = class_model.judge(
        rules.model,
        starts_at=sess.starts_at,
        # Time after the scheduled end never makes a class (a mentor arriving in the room's
        # grace period after it is not paid for no-shows).
        ended_at=min(now, sess.starts_at + timedelta(minutes=sess.duration_min)),
        duration_min=sess.duration_min,
        mentor=by_user.get(sess.mentor_id, []),
        learners={b.id: by_user.get(b.learner_id, []) for b in booked},
        changed=frozenset(b.id for b in booked if terms_changed(b, sess)),
    )
    sess = await session_state.transition(s, session_id, S.completed if verdict.took_place else S.cancelled, now=now)
    out = Settlement(sess, verdict.took_place)
    for b in booked:
        decided = verdict.outcome[b.id]
        if decided == class_model.REFUND:
            await _refund(s, sess, b, now, out, held=verdict.took_place)
        else:
            await _settle_held(s, sess, b, decided == class_model.ATTENDED, rules, now, out)
    await _settle_forfeits(s, sess, verdict.took_place, rules, now)
    if not verdict.took_place:
        await s.execute(
            update(Session)
            .where(Session.id == session_id)
            .values(seats_taken=0)
            .execution_options(synchronize_session=False)
        )
    out.notes.append(_mentor_note(s, sess, out, rules))
    return out


async def _settle_forfeits(s: AsyncSession, sess: Session, took_place: bool, rules: Rules, now: datetime) -> None:
    """Late cancellations kept their charge: it follows the class. Held at the terms they
    bought: the mentor's share is released after the hold like an attended seat's. Not held,
    or moved or shortened since they paid: the learner is refunded."""
    late = await charges.kept_by_late_cancellations(s, sess.id)
    for b in late:
        b.settled_at = now
        if await charges.is_refunded(s, b.id):
            continue
        if took_place and not terms_changed(b, sess):
            b.earnings_release_at = now + rules.hold
            if rules.hold <= timedelta(0):
                await _release(s, b, now)
        else:
            await charges.refund(s, b, f"session {sess.id} did not take place (late cancellation)")


async def _settle_held(
    s: AsyncSession, sess: Session, b: Booking, joined: bool, rules: Rules, now: datetime, out: Settlement
) -> None:
    b.status = BookingStatus.attended if joined else BookingStatus.no_show
    b.settled_at = now
    b.earnings_release_at = now + rules.hold
    if rules.hold <= timedelta(0):
        await _release(s, b, now)
    learner = await s.get(User, b.learner_id)
    until = spoken(b.earnings_release_at, learner.timezone if learner else None)
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


async def _refund(s: AsyncSession, sess: Session, b: Booking, now: datetime, out: Settlement, *, held: bool) -> None:
    b.status = BookingStatus.cancelled
    b.cancelled_at = now
    b.settled_at = now
    why = "the class did not take place for you" if held else "the class did not take place"
    await charges.refund(s, b, f"session {sess.id}: {why}")
    out.refunded.append(b.id)
    out.notes.append(
        notifications.add(
            s,
            b.learner_id,
            "session.cancelled" if not held else "session.refunded",
            (f"Did not take place: {sess.title}" if not held else f"Refunded: {sess.title}")[:200],
            (f"{why[0].upper()}{why[1:]}; you get a full refund." if b.price_cents else f"{why[0].upper()}{why[1:]}."),
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
    await charges.release(s, b)
    b.earnings_released_at = now


def _releasable(now: datetime) -> list[ColumnElement[bool]]:
    return [
        Booking.status.in_((BookingStatus.attended, BookingStatus.no_show, BookingStatus.cancelled)),
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


async def refund_resold_seats(
    s: AsyncSession, session_id: int, now: datetime, *, buyer_id: int | None = None
) -> list[Notification]:
    """A seat given up too late for a refund is not lost while the late canceller keeps paying
    for it: when it is sold again, or the class is made smaller than the learners holding seats
    plus the late cancellers still paying, the earliest late cancellers are refunded until the
    seats add up again, so the mentor is paid once per seat, not twice. A learner who books a
    class again after cancelling it late gets the earlier charge back (one seat, one charge).

    Call inside the write transaction that sold a seat (``buyer_id``) or lowered the capacity;
    the session row is locked by that change, so two of them cannot count the same kept charge.
    Returns the refunded learners' notices (staged; push them after commit)."""
    kept = [
        b for b in await charges.kept_by_late_cancellations(s, session_id) if not await charges.is_refunded(s, b.id)
    ]
    if not kept:
        return []
    sess = await s.scalar(select(Session).where(Session.id == session_id).execution_options(populate_existing=True))
    assert sess is not None
    notes: list[Notification] = []

    async def give_back(b: Booking, why: str) -> None:
        kept.remove(b)
        b.settled_at = now
        refunded = await charges.refund(s, b, f"booking {b.id}: {why}")
        notes.append(
            notifications.add(
                s,
                b.learner_id,
                "session.refunded",
                f"Refunded: {sess.title}",
                f"{why[0].upper()}{why[1:]}: {refunded / 100:.2f} {b.currency} refunded.",
                f"/sessions/{sess.id}",
            )
        )

    for b in [b for b in kept if b.learner_id == buyer_id]:
        await give_back(b, "you booked this class again, so the charge of your cancelled booking comes back")
    holding = int(
        await s.scalar(
            select(func.count(Booking.id)).where(
                Booking.session_id == session_id, Booking.status != BookingStatus.cancelled
            )
        )
        or 0
    )
    while kept and holding + len(kept) > sess.capacity:
        earliest = min(kept, key=lambda b: (b.cancelled_at or b.created_at, b.id))
        await give_back(earliest, "the seat you cancelled was taken by another learner")
    return notes
