"""Bookings: a seat in a scheduled session, paid through the sandbox provider and the ledger.

A seat can never be oversold: the seat is taken by one conditional
``UPDATE sessions SET seats_taken = seats_taken + 1 WHERE id = ? AND
seats_taken < capacity AND status = 'scheduled' AND starts_at > now`` inside
the write transaction and its rowcount decides; the CHECK constraint
(seats_taken <= capacity) and the partial unique index (one active booking
per learner and session) are the last line. The booking row, the charge
journal and the notifications commit together; pushes and e-mail follow the
commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.mailer import Attachment
from api.models import Booking, BookingStatus, Feedback, Journal, Notification, Session, SessionStatus, User
from api.schemas.bookings import BookingCancelOut, BookingOut, BookingPage, BookingSession
from api.services import accounts, catalog_reads, ics, notifications, room_access, session_state
from api.services.money import charges, ledger, settlement
from api.services.catalog import Viewer, push_seats, seats_left
from api.services.errors import Conflict, Invalid, NotFound, Unprocessable
from api.services.local_time import spoken
from api.services.money.provider import provider
from api.services.settings_store import get_all as platform_settings

log = logging.getLogger(__name__)

S = SessionStatus
MAX_KEY = 128


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    """A usable Idempotency-Key (1-128 printable ASCII) or None; 400 otherwise."""
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY or not all(33 <= ord(c) < 127 for c in key):
        raise Invalid(
            "Idempotency-Key must be 1-128 printable ASCII characters.",
            code="invalid_idempotency_key",
            fields={"Idempotency-Key": "invalid"},
        )
    return key


def idempotency_mismatch() -> Unprocessable:
    return Unprocessable("This Idempotency-Key was already used with a different request.", code="idempotency_mismatch")


def to_out(
    b: Booking, sess: Session, mentor_name: str, refunded: bool = False, my_rating: int | None = None
) -> BookingOut:
    return BookingOut(
        id=b.id,
        session_id=b.session_id,
        learner_id=b.learner_id,
        status=b.status.value,
        price_cents=b.price_cents,
        currency=b.currency,
        payment_ref=b.payment_ref,
        payment_provider=provider.name,
        test_mode=provider.test_mode,
        refunded=refunded,
        created_at=b.created_at,
        cancelled_at=b.cancelled_at,
        booked_starts_at=b.booked_starts_at,
        booked_duration_min=b.booked_duration_min,
        terms_changed=b.status == BookingStatus.confirmed and settlement.terms_changed(b, sess),
        my_rating=my_rating,
        session=BookingSession(
            id=sess.id,
            title=sess.title,
            starts_at=sess.starts_at,
            ends_at=sess.starts_at + timedelta(minutes=sess.duration_min),
            duration_min=sess.duration_min,
            status=sess.status.value,
            mentor_id=sess.mentor_id,
            mentor_name=mentor_name,
            attendee_replay=sess.replay_allowed,
        ),
    )


async def _out(s: AsyncSession, b: Booking) -> BookingOut:
    sess = await s.get(Session, b.session_id)
    assert sess is not None
    mentor = await s.get(User, sess.mentor_id)
    refunded = await ledger.journal_by_key(s, f"refund:booking:{b.id}") is not None
    rating = (await _ratings(s, b.learner_id, [b.session_id])).get(b.session_id)
    return to_out(b, sess, mentor.full_name if mentor else "", refunded, rating)


async def _ratings(s: AsyncSession, learner_id: int, session_ids: list[int]) -> dict[int, int]:
    """The learner's ratings of these classes, by session id (one query for a page)."""
    if not session_ids:
        return {}
    rows = await s.execute(
        select(Feedback.session_id, Feedback.rating).where(
            Feedback.author_id == learner_id, Feedback.session_id.in_(session_ids)
        )
    )
    return {int(sid): int(rating) for sid, rating in rows.all()}


async def _by_key(s: AsyncSession, learner_id: int, key: str) -> Booking | None:
    return await s.scalar(
        select(Booking)
        .where(Booking.learner_id == learner_id, Booking.idempotency_key == key)
        .execution_options(populate_existing=True)
    )


async def _replay(s: AsyncSession, existing: Booking, digest: str) -> BookingOut:
    if existing.request_hash != digest:
        raise idempotency_mismatch()
    return await _out(s, existing)


async def replay_by_key(s: AsyncSession, learner_id: int, key: str | None, digest: str) -> BookingOut | None:
    """The booking an earlier request with this learner's ``key`` made (422 if its body
    differed), or None: what any booking endpoint answers to a retried request."""
    if not key:
        return None
    existing = await _by_key(s, learner_id, key)
    return await _replay(s, existing, digest) if existing is not None else None


@dataclass
class Booked:
    booking: BookingOut
    created: bool  # False when an Idempotency-Key replay returned the earlier booking
    seats_left: int | None = None


async def create_booking(ctx: Context, learner: Viewer, session_id: int, idempotency_key: str | None = None) -> Booked:
    """Book one seat for ``learner`` (charged through the sandbox; confirmation e-mail with .ics).

    409: ``already_booked``, ``sold_out``, ``own_session``, ``session_cancelled``,
    ``session_started``, ``session_not_bookable``; 404 for unknown/draft sessions;
    422 ``idempotency_mismatch`` for a reused key with another body."""
    key = check_key(idempotency_key)
    digest = request_hash({"session_id": session_id})
    if key:
        async with ctx.db.read() as s:
            existing = await _by_key(s, learner.id, key)
            if existing is not None:
                return Booked(await _replay(s, existing, digest), False)
    if not key:  # (with a key, a concurrent twin's commit must answer as a replay, not a 409)
        await catalog_reads.refuse_booking_early(ctx.db, learner, session_id)  # no writer for a known 409
    fee_percent = float((await platform_settings(ctx.db))["platform_fee_percent"])
    notes: list[Notification] = []
    try:
        async with ctx.db.write() as s:
            if key:  # a concurrent request with this key may have committed meanwhile
                existing = await _by_key(s, learner.id, key)
                if existing is not None:
                    return Booked(await _replay(s, existing, digest), False)
            sess = await s.get(Session, session_id)
            if sess is None or sess.status == S.draft:
                raise NotFound.of("session")
            if sess.mentor_id == learner.id:
                raise Conflict("You cannot book your own session.", code="own_session")
            await accounts.ensure_verified(s, learner.id, ctx.settings)  # paying needs a reachable address
            await accounts.ensure_can_sell(s, sess.mentor_id, ctx.settings)  # and someone to pay
            if (
                await s.scalar(
                    select(Booking.id).where(
                        Booking.session_id == session_id,
                        Booking.learner_id == learner.id,
                        Booking.status != BookingStatus.cancelled,
                    )
                )
                is not None
            ):
                # with a key, the seat may be a concurrent twin's that committed after our lookup
                if key and (existing := await _by_key(s, learner.id, key)) is not None:
                    return Booked(await _replay(s, existing, digest), False)
                raise Conflict("You already have a seat in this session.", code="already_booked")
            booking = await book_in(s, sess, learner.id, fee_percent, key=key, digest=digest, notes=notes)
            sess = await s.scalar(
                select(Session).where(Session.id == session_id).execution_options(populate_existing=True)
            )
            assert sess is not None
            mentor = await s.get(User, sess.mentor_id)
            user = await s.get(User, learner.id)
            assert mentor is not None and user is not None
            when = spoken(sess.starts_at, user.timezone)
            notes.append(
                notifications.add(
                    s,
                    learner.id,
                    "booking.created",
                    f"Booked: {sess.title}",
                    f"Your seat is confirmed for {when}.",
                    f"/sessions/{sess.id}",
                )
            )
            notes.append(
                notifications.add(
                    s,
                    sess.mentor_id,
                    "booking.created",
                    f"New booking: {sess.title}",
                    f"{user.full_name} booked a seat ({seats_left(sess)} left).",
                    f"/sessions/{sess.id}",
                )
            )
            await s.flush()
            out = to_out(booking, sess, mentor.full_name)
            left = seats_left(sess)
            learner_email, learner_name, learner_zone = user.email, user.full_name, user.timezone
    except IntegrityError:
        # PostgreSQL: a concurrent request of this learner (same key or same session) won.
        async with ctx.db.read() as s:
            if key:
                existing = await _by_key(s, learner.id, key)
                if existing is not None:
                    return Booked(await _replay(s, existing, digest), False)
            raise Conflict("You already have a seat in this session.", code="already_booked") from None
    await notifications.push(ctx.broker, notes)
    await push_seats(ctx.broker, session_id, left)
    await send_confirmation(ctx, out, learner_email, learner_name, mentor.full_name, mentor.email, learner_zone)
    return Booked(out, True, left)


async def book_in(
    s: AsyncSession,
    sess: Session,
    learner_id: int,
    fee_percent: float,
    *,
    key: str | None = None,
    digest: str | None = None,
    require_future: bool = True,
    notes: list[Notification] | None = None,
) -> Booking:
    """Inside a write transaction: take one seat of ``sess`` (conditional UPDATE, never
    oversold), insert the confirmed booking and record its sandbox charge in the ledger.

    Raises 409 (``sold_out``, ``session_started`` ...) when no seat can be taken.
    ``require_future=False`` lets the demo loader seat learners in past sessions. ``notes``
    collects the notices of late cancellers this sale refunds (docs/money.md), to push."""
    now = utcnow()
    conds = [Session.id == sess.id, Session.status == S.scheduled, Session.seats_taken < Session.capacity]
    if require_future:
        conds.append(Session.starts_at > now)
    taken = await s.execute(
        update(Session)
        .where(*conds)
        .values(seats_taken=Session.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )
    if (taken.rowcount or 0) != 1:  # type: ignore[attr-defined]
        fresh = await s.scalar(select(Session).where(Session.id == sess.id).execution_options(populate_existing=True))
        assert fresh is not None
        raise _not_bookable(fresh, now)
    booking = Booking(
        session_id=sess.id,
        learner_id=learner_id,
        status=BookingStatus.confirmed,
        price_cents=sess.price_cents,
        currency=sess.currency,
        idempotency_key=key,
        request_hash=digest if key else None,
        booked_starts_at=sess.starts_at,
        booked_duration_min=sess.duration_min,
    )
    s.add(booking)
    await s.flush()
    await charges.charge(s, booking, sess, fee_percent)
    resold = await settlement.refund_resold_seats(s, sess.id, now, buyer_id=learner_id)
    if notes is not None:
        notes.extend(resold)
    return booking


async def book_one_to_one(
    s: AsyncSession,
    learner_id: int,
    fee_percent: float,
    now: datetime,
    *,
    key: str | None = None,
    digest: str | None = None,
    **fields: Any,
) -> tuple[Session, Booking]:
    """Inside a write transaction: a new 1:1 class (one seat) made for this learner, scheduled,
    booked and charged at once: a confirmed proposal, a booked slot. ``fields`` are the
    session's own (mentor, title, time, length, price ...); ``key``/``digest``: the request's
    Idempotency-Key and body hash, kept on the booking."""
    sess = Session(curriculum=[], capacity=1, seats_taken=0, status=S.draft, talk_time={}, **fields)
    s.add(sess)
    await s.flush()
    sess = await session_state.transition(s, sess.id, S.scheduled, now=now)
    return sess, await book_in(s, sess, learner_id, fee_percent, key=key, digest=digest)


def _not_bookable(sess: Session, now: datetime) -> Conflict:
    if sess.status == S.cancelled:
        return Conflict("This session was cancelled.", code="session_cancelled")
    if sess.status != S.scheduled:
        return Conflict(f"A {sess.status.value} session cannot be booked.", code="session_not_bookable")
    if sess.starts_at <= now:
        return Conflict("This session has already started.", code="session_started")
    return Conflict("This session is sold out.", code="sold_out")


def confirmation_ics(ctx: Context, b: BookingOut, mentor_name: str, mentor_email: str) -> bytes:
    url = f"{ctx.settings.public_url.rstrip('/')}/sessions/{b.session_id}"
    return ics.event(
        uid=f"booking-{b.id}-session-{b.session_id}@peerlearn",
        start=b.session.starts_at,
        end=b.session.ends_at,
        summary=f"PeerLearn: {b.session.title}",
        description=f"Live session with {mentor_name}. Join from {url}",
        url=url,
        organizer_name=mentor_name,
        organizer_email="no-reply@peerlearn.local",
        stamp=b.created_at,
    )


async def send_confirmation(
    ctx: Context,
    b: BookingOut,
    to: str,
    learner_name: str,
    mentor_name: str,
    mentor_email: str,
    zone: str | None = None,
) -> None:
    """The confirmation e-mail, its time in the learner's zone (``zone``, their profile's) and named."""
    url = f"{ctx.settings.public_url.rstrip('/')}/sessions/{b.session_id}"
    price = (
        "free" if b.price_cents == 0 else f"{b.price_cents / 100:.2f} {b.currency} (sandbox test mode, no real charge)"
    )
    body = (
        f'Hi {learner_name},\n\nyour seat in "{b.session.title}" with {mentor_name} is confirmed.\n'
        f"Starts: {spoken(b.session.starts_at, zone)} ({b.session.duration_min} min)\n"
        f"Price: {price}\nPayment reference: {b.payment_ref or '-'}\n\nJoin here: {url}\n\n"
        "The attached invite adds it to your calendar.\n"
    )
    await ctx.mailer.send(
        to,
        f"Booking confirmed: {b.session.title}",
        body,
        (Attachment("peerlearn-session.ics", confirmation_ics(ctx, b, mentor_name, mentor_email), "text/calendar"),),
    )


async def confirm_by_mail(ctx: Context, booking_id: int) -> None:
    """Mail the confirmation (with its .ics invite) for a booking made elsewhere, e.g. an
    accepted request, exactly as for a booking made from the catalogue."""
    async with ctx.db.read() as s:
        b = await s.get(Booking, booking_id)
        if b is None:
            return
        out = await _out(s, b)
        learner = await s.get(User, b.learner_id)
        sess = await s.get(Session, b.session_id)
        mentor = await s.get(User, sess.mentor_id) if sess is not None else None
    if learner is None or mentor is None:
        return
    await send_confirmation(
        ctx, out, learner.email, learner.full_name, mentor.full_name, mentor.email, learner.timezone
    )


async def cancel_booking(ctx: Context, learner: Viewer, booking_id: int) -> BookingCancelOut:
    """The learner cancels their own booking: the seat is released; a full refund when more
    than ``refund_window_hours`` remain before the start, none after."""
    window = int((await platform_settings(ctx.db))["refund_window_hours"])
    notes: list[Notification] = []
    async with ctx.db.read() as s:
        found = await s.get(Booking, booking_id)
        if found is None or found.learner_id != learner.id:
            raise NotFound.of("booking")
        session_id = found.session_id
    async with ctx.db.write() as s:
        # Lock order everywhere: session row first, then its bookings.
        sess = await s.scalar(
            select(Session).where(Session.id == session_id).with_for_update().execution_options(populate_existing=True)
        )
        b = await s.scalar(
            select(Booking).where(Booking.id == booking_id).with_for_update().execution_options(populate_existing=True)
        )
        assert sess is not None and b is not None
        if b.status != BookingStatus.confirmed:
            raise Conflict(f"This booking is already {b.status.value}.", code="booking_not_active")
        now = utcnow()
        # The mentor may open the room (live) a few minutes early: until the start itself the
        # learner may still cancel, under the refund window like any cancellation.
        if sess.status not in (S.scheduled, S.live) or sess.starts_at <= now:
            raise Conflict("The session has started; the booking can no longer be cancelled.", code="session_started")
        # The refund window counts from the time the learner booked for; a class moved or
        # shortened since (terms_changed) is refunded in full whatever the time (docs/money.md).
        booked_for = b.booked_starts_at or sess.starts_at
        refund = 0
        if booked_for - now > timedelta(hours=window) or settlement.terms_changed(b, sess):
            refund = await charges.refund(s, b, f"booking {b.id} cancelled by learner")
        b.status = BookingStatus.cancelled
        b.cancelled_at = now
        await room_access.revoke_for_seat(s, session_id, learner.id)  # no refund and a seat in the room
        await s.execute(
            update(Session)
            .where(Session.id == session_id, Session.seats_taken > 0)
            .values(seats_taken=Session.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
        sess = await s.scalar(select(Session).where(Session.id == session_id).execution_options(populate_existing=True))
        assert sess is not None
        user = await s.get(User, learner.id)
        money = (
            f"Refund: {refund / 100:.2f} {b.currency}."
            if refund
            else ("No refund (cancelled inside the refund window)." if b.price_cents else "")
        )
        notes.append(
            notifications.add(
                s, learner.id, "booking.cancelled", f"Booking cancelled: {sess.title}", money, f"/sessions/{sess.id}"
            )
        )
        notes.append(
            notifications.add(
                s,
                sess.mentor_id,
                "booking.cancelled",
                f"Cancellation: {sess.title}",
                f"{user.full_name if user else 'A learner'} cancelled; {seats_left(sess)} seats left.",
                f"/sessions/{sess.id}",
            )
        )
        await s.flush()
        out = await _out(s, b)
        left = seats_left(sess)
    await notifications.push(ctx.broker, notes)
    await push_seats(ctx.broker, session_id, left)
    return BookingCancelOut(booking=out, refund_cents=refund, seats_left=left)


async def accept_change(ctx: Context, learner: Viewer, booking_id: int) -> BookingOut:
    """The learner agrees to the class's new time or length: those become the booked terms
    (refund window and settlement count from them). 409 ``no_change`` if nothing changed."""
    async with ctx.db.write() as s:
        b = await s.get(Booking, booking_id)
        if b is None or b.learner_id != learner.id:
            raise NotFound.of("booking")
        sess = await s.get(Session, b.session_id)
        assert sess is not None
        if b.status != BookingStatus.confirmed or sess.status not in (S.scheduled, S.live):
            raise Conflict(f"This booking is already {b.status.value}.", code="booking_not_active")
        if not settlement.terms_changed(b, sess):
            raise Conflict("This class still has the time and length you booked.", code="no_change")
        b.booked_starts_at, b.booked_duration_min = sess.starts_at, sess.duration_min
        await s.flush()
        return await _out(s, b)


async def list_bookings(
    ctx: Context, learner_id: int, *, when: str = "all", page: int = 1, page_size: int = 20
) -> BookingPage:
    """The learner's own bookings. ``upcoming``: active seats in scheduled/live sessions
    (soonest first); ``past``: everything else (latest first)."""
    upcoming = and_(Booking.status != BookingStatus.cancelled, Session.status.in_((S.scheduled, S.live)))
    conds: list[Any] = [Booking.learner_id == learner_id]
    order: tuple[Any, ...] = (Session.starts_at.desc(), Booking.id.desc())
    if when == "upcoming":
        conds.append(upcoming)
        order = (Session.starts_at.asc(), Booking.id.asc())
    elif when == "past":
        conds.append(or_(Booking.status == BookingStatus.cancelled, Session.status.in_((S.completed, S.cancelled))))
    async with ctx.db.read() as s:
        base = (
            select(Booking, Session, User.full_name)
            .join(Session, Session.id == Booking.session_id)
            .join(User, User.id == Session.mentor_id)
            .where(*conds)
        )
        total = await s.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = (await s.execute(base.order_by(*order).limit(page_size).offset((page - 1) * page_size))).all()
        keys = [f"refund:booking:{b.id}" for b, _, _ in rows]
        refunded = (
            set((await s.scalars(select(Journal.idempotency_key).where(Journal.idempotency_key.in_(keys)))).all())
            if keys
            else set()
        )
        ratings = await _ratings(s, learner_id, [b.session_id for b, _, _ in rows])
    return BookingPage(
        items=[
            to_out(b, sess, name, f"refund:booking:{b.id}" in refunded, ratings.get(b.session_id))
            for b, sess, name in rows
        ],
        total=total,
        page=page,
        page_size=page_size,
    )


async def get_booking(ctx: Context, viewer: Viewer, booking_id: int) -> BookingOut:
    async with ctx.db.read() as s:
        b = await s.get(Booking, booking_id)
        if b is None:
            raise NotFound.of("booking")
        sess = await s.get(Session, b.session_id)
        if b.learner_id != viewer.id and viewer.role != "admin" and (sess is None or sess.mentor_id != viewer.id):
            raise NotFound.of("booking")
        return await _out(s, b)
