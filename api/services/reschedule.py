"""Moving a booked 1:1 by consent: either side proposes one of the mentor's free slots, the other
accepts or declines; until then the old time stands.

Nothing moves without the other side's yes, and no money moves at all: the
class keeps its booking, price and charge, only its start changes (and its
iCalendar SEQUENCE, so subscribed calendars follow). Accepting re-checks the
slot under the same per-mentor serialization as booking one
(``api.services.slot_booking``), so a slot booked meanwhile is never
double-booked. Group classes are not moved here: a mentor's change to a sold
class is the money rules' business (a full refund on request).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import Booking, BookingStatus, Notification, Session, SessionStatus, User
from api.models_scheduling import MentorAvailability, RescheduleProposal, RescheduleStatus
from api.schemas.scheduling import RescheduleOut, RescheduleState
from api.services import availability, notifications, slots
from api.services.catalog import Viewer, push_status
from api.services.errors import Conflict, Forbidden, NotFound
from api.services.local_time import spoken
from api.services.slot_booking import RECHECK, not_a_slot, slot_taken

P = RescheduleStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _learner_of(s: AsyncSession, sess: Session) -> int | None:
    """The one learner of a 1:1 (None if it is no booked 1:1)."""
    if sess.capacity != 1:
        return None
    return await s.scalar(
        select(Booking.learner_id).where(Booking.session_id == sess.id, Booking.status == BookingStatus.confirmed)
    )


async def _party_session(s: AsyncSession, session_id: int, viewer: Viewer) -> tuple[Session, int | None]:
    """The session and its 1:1 learner (None for a group class), if ``viewer`` is its mentor or
    a learner booked in it (404 otherwise)."""
    sess = await s.get(Session, session_id)
    if sess is None:
        raise NotFound.of("session")
    learner_id = await _learner_of(s, sess)
    if viewer.id != sess.mentor_id and viewer.id != learner_id:
        seated = await s.scalar(
            select(Booking.id).where(
                Booking.session_id == sess.id,
                Booking.learner_id == viewer.id,
                Booking.status == BookingStatus.confirmed,
            )
        )
        if seated is None:  # a group class's learner may ask (and hear no); anyone else: no such class
            raise NotFound.of("session")
    return sess, learner_id


async def _out(s: AsyncSession, p: RescheduleProposal) -> RescheduleOut:
    who = await s.get(User, p.proposed_by_id)
    return RescheduleOut(
        id=p.id,
        session_id=p.session_id,
        proposed_by_id=p.proposed_by_id,
        proposed_by_name=who.full_name if who else "",
        starts_at=p.starts_at,
        previous_starts_at=p.previous_starts_at,
        status=p.status.value,
        created_at=p.created_at,
        decided_at=p.decided_at,
    )


async def _pending(s: AsyncSession, session_id: int) -> RescheduleProposal | None:
    return await s.scalar(
        select(RescheduleProposal)
        .where(RescheduleProposal.session_id == session_id, RescheduleProposal.status == P.pending)
        .execution_options(populate_existing=True)
    )


def _movable(sess: Session, learner_id: int | None, now: datetime) -> bool:
    return learner_id is not None and sess.status == SessionStatus.scheduled and sess.starts_at > now


async def state(ctx: Context, viewer: Viewer, session_id: int) -> RescheduleState:
    """What the class's mentor or learner sees: the pending proposal, and whether they may propose."""
    async with ctx.db.read() as s:
        sess, learner_id = await _party_session(s, session_id, viewer)
        pending = await _pending(s, session_id)
        return RescheduleState(
            pending=await _out(s, pending) if pending else None,
            can_propose=pending is None and _movable(sess, learner_id, utcnow()),
            mentor_id=sess.mentor_id,
        )


async def _free_for(s: AsyncSession, sess: Session, starts: datetime, now: datetime, *, lock: bool) -> None:
    """409 unless ``starts`` is one of the mentor's free slots (the class itself not counted as busy)."""
    query = select(MentorAvailability).where(MentorAvailability.mentor_id == sess.mentor_id)
    if lock:  # serialize with slot bookings of this mentor (PostgreSQL; SQLite has one writer)
        query = query.with_for_update().execution_options(populate_existing=True)
    row = await s.scalar(query)
    if row is None:
        raise not_a_slot()
    free = await availability.free_in(s, row, starts - RECHECK, starts + RECHECK, now, exclude_session=sess.id)
    if not any(x.starts_at == starts for x in free):
        offered = slots.free_slots(availability.rules_of(row), [], starts - RECHECK, starts + RECHECK, now)
        raise slot_taken() if any(x.starts_at == starts for x in offered) else not_a_slot()
    needed = starts + timedelta(minutes=sess.duration_min)
    busy = await availability.busy_times(s, sess.mentor_id, starts, needed, exclude_session=sess.id)
    if any(starts < b_end and b_start < needed for b_start, b_end in busy):
        raise slot_taken()  # the class is longer than the slot and runs into another one


async def propose(ctx: Context, viewer: Viewer, session_id: int, starts_at: str) -> RescheduleOut:
    """One side of a booked 1:1 asks to move it to another free slot of the mentor.

    409 ``not_reschedulable`` (no booked 1:1, started, over), ``reschedule_pending`` (an
    answer is awaited), ``same_time``, ``slot_unavailable`` / ``slot_taken``."""
    starts = availability.parse_instant(starts_at, "starts_at")
    now = utcnow()
    notes: list[Notification] = []
    try:
        async with ctx.db.write() as s:
            sess, learner_id = await _party_session(s, session_id, viewer)
            if not _movable(sess, learner_id, now):
                raise Conflict("Only a booked 1:1 that has not started can be moved.", code="not_reschedulable")
            assert learner_id is not None
            if await _pending(s, session_id) is not None:
                raise Conflict("A new time is already waiting for an answer.", code="reschedule_pending")
            if starts == sess.starts_at:
                raise Conflict("That is the class's time already.", code="same_time")
            await _free_for(s, sess, starts, now, lock=False)
            p = RescheduleProposal(
                session_id=session_id,
                proposed_by_id=viewer.id,
                starts_at=starts,
                previous_starts_at=sess.starts_at,
                status=P.pending,
                created_at=now,
            )
            s.add(p)
            await s.flush()
            other = learner_id if viewer.id == sess.mentor_id else sess.mentor_id
            me, them = await s.get(User, viewer.id), await s.get(User, other)
            assert me is not None and them is not None
            notes.append(
                notifications.add(
                    s,
                    other,
                    "session.reschedule_proposed",
                    f"New time proposed: {sess.title}"[:200],
                    f"{me.full_name} asks to move it from {spoken(sess.starts_at, them.timezone)} to "
                    f"{spoken(starts, them.timezone)}. Until you accept, the old time stands.",
                    f"/sessions/{sess.id}",
                )
            )
            out = await _out(s, p)
    except IntegrityError:  # a concurrent proposal for this class won the unique index
        raise Conflict("A new time is already waiting for an answer.", code="reschedule_pending") from None
    await notifications.push(ctx.broker, notes)
    return out


async def _answerable(s: AsyncSession, proposal_id: int, viewer: Viewer) -> tuple[RescheduleProposal, Session]:
    """The proposal and its class if ``viewer`` is the side that answers it (403 for its proposer)."""
    p = await s.get(RescheduleProposal, proposal_id)
    if p is None:
        raise NotFound.of("proposal")
    sess, _ = await _party_session(s, p.session_id, viewer)
    if p.proposed_by_id == viewer.id:
        raise Forbidden("The other side answers your proposal.")
    return p, sess


async def _settle(s: AsyncSession, proposal_id: int, status: RescheduleStatus, now: datetime) -> None:
    """pending -> ``status``; exactly one answer (or withdrawal) wins this conditional update."""
    done = await s.execute(
        update(RescheduleProposal)
        .where(RescheduleProposal.id == proposal_id, RescheduleProposal.status == P.pending)
        .values(status=status, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if (done.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise Conflict("This proposal was already answered or withdrawn.", code="proposal_closed")


async def accept(ctx: Context, viewer: Viewer, proposal_id: int) -> RescheduleOut:
    """The other side says yes: the class moves to the proposed slot (if it is still free)."""
    now = utcnow()
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        p, sess = await _answerable(s, proposal_id, viewer)
        learner_id = await _learner_of(s, sess)
        if not _movable(sess, learner_id, now):
            raise Conflict("The class can no longer be moved.", code="not_reschedulable")
        await _free_for(s, sess, p.starts_at, now, lock=True)
        await _settle(s, proposal_id, P.accepted, now)
        sess.starts_at = p.starts_at
        sess.sequence += 1  # subscribed calendars take the new time
        sess.updated_at = now
        assert learner_id is not None  # _movable checked it
        # Both sides agreed: the new time is the booked one (docs/money.md, terms of a sale).
        await s.execute(
            update(Booking)
            .where(Booking.session_id == sess.id, Booking.status == BookingStatus.confirmed)
            .values(booked_starts_at=p.starts_at)
            .execution_options(synchronize_session=False)
        )
        for uid in (sess.mentor_id, learner_id):
            user = await s.get(User, uid)
            assert user is not None
            notes.append(
                notifications.add(
                    s,
                    uid,
                    "session.rescheduled",
                    f"Moved: {sess.title}"[:200],
                    f"Both sides agreed: it now starts {spoken(p.starts_at, user.timezone)}.",
                    f"/sessions/{sess.id}",
                )
            )
        await s.flush()
        p = await s.get(RescheduleProposal, proposal_id, populate_existing=True)  # type: ignore[assignment]
        assert p is not None
        out = await _out(s, p)
    await notifications.push(ctx.broker, notes)
    await push_status(ctx.broker, sess)
    return out


async def decline(ctx: Context, viewer: Viewer, proposal_id: int) -> RescheduleOut:
    """The other side says no: the class stays at its time."""
    return await _close(ctx, viewer, proposal_id, P.declined)


async def withdraw(ctx: Context, viewer: Viewer, proposal_id: int) -> RescheduleOut:
    """The proposer takes it back before an answer."""
    return await _close(ctx, viewer, proposal_id, P.withdrawn)


async def _close(ctx: Context, viewer: Viewer, proposal_id: int, status: RescheduleStatus) -> RescheduleOut:
    now = utcnow()
    notes: list[Notification] = []
    tell: int | None
    async with ctx.db.write() as s:
        if status == P.declined:
            p, sess = await _answerable(s, proposal_id, viewer)
            tell, verb = p.proposed_by_id, "declined"
        else:
            found = await s.get(RescheduleProposal, proposal_id)
            if found is None:
                raise NotFound.of("proposal")
            sess, learner_id = await _party_session(s, found.session_id, viewer)
            if found.proposed_by_id != viewer.id:
                raise Forbidden("Only who proposed a time may withdraw it.")
            p = found
            tell = learner_id if viewer.id == sess.mentor_id else sess.mentor_id
            verb = "withdrew"
        await _settle(s, proposal_id, status, now)
        who = await s.get(User, viewer.id)
        if tell is not None:
            notes.append(
                notifications.add(
                    s,
                    tell,
                    f"session.reschedule_{status.value}",
                    f"Time unchanged: {sess.title}"[:200],
                    f"{who.full_name if who else 'The other side'} {verb} the new time; the class stays as booked.",
                    f"/sessions/{sess.id}",
                )
            )
        await s.flush()
        p = await s.get(RescheduleProposal, proposal_id, populate_existing=True)  # type: ignore[assignment]
        assert p is not None
        out = await _out(s, p)
    await notifications.push(ctx.broker, notes)
    return out
