"""Booking a mentor's free slot: a new 1:1 session, scheduled, booked and charged in one transaction.

Two learners racing for one slot are serialized per mentor: SQLite's writer is
``BEGIN IMMEDIATE``; on PostgreSQL the mentor's availability row is locked
``FOR UPDATE`` before the slot is re-checked, and READ COMMITTED lets the
re-check see the winner's committed session. So exactly one gets 201 and the
others 409 ``slot_taken``. The seat and the charge go through
``api.services.bookings.book_in``, the path every booking takes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.context import Context
from api.models import Notification, User
from api.models_scheduling import MentorAvailability
from api.services import accounts, availability, bookings, notifications, slots
from api.services.catalog import Viewer
from api.services.errors import Conflict
from api.services.local_time import spoken
from api.services.settings_store import get_all as platform_settings

# A slot is re-checked in a window this wide around it (the generator's verdict does not depend on it).
RECHECK = timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def slot_taken() -> Conflict:
    return Conflict("Someone else just booked this time; pick another slot.", code="slot_taken")


def not_a_slot() -> Conflict:
    return Conflict("This time is not one of the mentor's free slots.", code="slot_unavailable")


async def book_slot(
    ctx: Context, learner: Viewer, mentor_id: int, starts_at: str, idempotency_key: str | None = None
) -> bookings.Booked:
    """Book the free slot of ``mentor_id`` starting at ``starts_at`` for ``learner``.

    Honours an Idempotency-Key: a retried request (the page retries after a 503) gets the
    booking the first one made (``created`` False) instead of 409 ``slot_taken`` by itself;
    the same key with another slot is 422 ``idempotency_mismatch``.

    409 ``slot_taken`` when the time is one of the mentor's slots but no longer free,
    ``slot_unavailable`` when it is no slot at all (outside the rules, notice or horizon),
    ``own_session`` for the mentor themself; 404 for an unknown or inactive mentor;
    403 ``email_unverified`` for a learner who has not confirmed their address."""
    starts = availability.parse_instant(starts_at, "starts_at")
    key = bookings.check_key(idempotency_key)
    digest = bookings.request_hash({"slot": [mentor_id, starts.isoformat()]})
    if key:
        async with ctx.db.read() as s:
            if (earlier := await bookings.replay_by_key(s, learner.id, key, digest)) is not None:
                return bookings.Booked(earlier, False)
    if mentor_id == learner.id:
        raise Conflict("You cannot book your own slot.", code="own_session")
    fee_percent = float((await platform_settings(ctx.db))["platform_fee_percent"])
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        await accounts.ensure_verified(s, learner.id, ctx.settings)  # paying needs a reachable address
        mentor = await availability.active_mentor(s, mentor_id)
        if not availability.takes_bookings(mentor, ctx.settings):
            raise not_a_slot()
        row = await s.scalar(
            select(MentorAvailability)
            .where(MentorAvailability.mentor_id == mentor_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise not_a_slot()
        # the mentor's row is locked: a concurrent twin of this request has committed or waits
        if (earlier := await bookings.replay_by_key(s, learner.id, key, digest)) is not None:
            return bookings.Booked(earlier, False)
        now = utcnow()
        free = await availability.free_in(s, row, starts - RECHECK, starts + RECHECK, now)
        slot = next((x for x in free if x.starts_at == starts), None)
        if slot is None:
            offered = slots.free_slots(availability.rules_of(row), [], starts - RECHECK, starts + RECHECK, now)
            raise slot_taken() if any(x.starts_at == starts for x in offered) else not_a_slot()
        user = await s.get(User, learner.id)
        assert user is not None
        sess, booking = await bookings.book_one_to_one(
            s,
            learner.id,
            fee_percent,
            now,
            mentor_id=mentor_id,
            title=f"1:1 with {mentor.full_name}"[:200],
            description=f"A {row.slot_minutes}-minute one-to-one booked from {mentor.full_name}'s availability.",
            domain=(mentor.domains or ["Mentoring"])[0][:80],
            skills=list(mentor.skills or [])[:20],
            price_cents=row.price_cents,
            currency=row.currency,
            starts_at=slot.starts_at,
            duration_min=row.slot_minutes,
            key=key,
            digest=digest,
        )
        notes.append(
            notifications.add(
                s,
                learner.id,
                "booking.created",
                f"Booked: {sess.title}"[:200],
                f"Your 1:1 is confirmed for {spoken(sess.starts_at, user.timezone)}.",
                f"/sessions/{sess.id}",
            )
        )
        notes.append(
            notifications.add(
                s,
                mentor_id,
                "booking.created",
                f"New 1:1: {user.full_name}"[:200],
                f"{user.full_name} booked your slot at {spoken(sess.starts_at, mentor.timezone)}.",
                f"/sessions/{sess.id}",
            )
        )
        await s.flush()
        out = bookings.to_out(booking, sess, mentor.full_name)
    await notifications.push(ctx.broker, notes)
    await bookings.confirm_by_mail(ctx, out.id)
    return bookings.Booked(out, True)
