"""Sessions: drafts, edits, publishing, cancelling (with refunds), browsing, details, reviews.

Status changes go through :mod:`api.services.session_state` only. Other modules
move a session with :func:`start_session` (scheduled -> live) and
:func:`complete_session` (-> completed or, if the class did not take place,
cancelled; bookings settled in the same transaction by ``api.services.money.settlement``);
:func:`cancel_session` refunds and notifies everyone booked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.broker import MemoryBroker
from api.context import Context
from api.db import Database
from api.models import Booking, BookingStatus, Feedback, Notification, Role, Session, SessionStatus, User
from api.schemas.sessions import (
    MentorBrief,
    Rating,
    SessionCreate,
    SessionDetail,
    SessionOut,
    SessionUpdate,
)
from api.services import accounts, mentor_record, notifications, room_access, session_state
from api.services.money import charges, settlement
from api.services.accounts import avatar_url
from api.services.booking_horizon import within_horizon
from api.services.errors import Conflict, Forbidden, Invalid, NotFound
from api.services.local_time import spoken, user_zones
from api.services.settings_store import get_all as platform_settings

log = logging.getLogger(__name__)

S = SessionStatus
ACTIVE_BOOKING = (BookingStatus.confirmed, BookingStatus.attended)


class Viewer(Protocol):
    """Who is looking (``api.auth.CurrentUser`` fits); None means anonymous."""

    id: int
    role: str


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- helpers


def to_utc(value: datetime, tz_name: str | None, default_tz: str = "UTC") -> datetime:
    """An aware UTC datetime from an aware value, or a naive one read in ``tz_name``."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(timezone.utc)
    name = tz_name or default_tz or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid("Unknown time zone.", fields={"timezone": f"unknown time zone {name!r}"}) from exc
    return value.replace(tzinfo=zone).astimezone(timezone.utc)


def seats_left(sess: Session) -> int:
    return max(0, sess.capacity - sess.seats_taken)


def _mentor_brief(user: User, rating: Rating | None = None) -> MentorBrief:
    return MentorBrief(id=user.id, full_name=user.full_name, avatar_url=avatar_url(user), rating=rating or Rating())


def to_out(sess: Session, mentor: User, mentor_rating: Rating | None = None) -> SessionOut:
    return SessionOut(
        id=sess.id,
        title=sess.title,
        description=sess.description,
        domain=sess.domain,
        skills=list(sess.skills or []),
        price_cents=sess.price_cents,
        currency=sess.currency,
        capacity=sess.capacity,
        seats_taken=sess.seats_taken,
        seats_left=seats_left(sess),
        starts_at=sess.starts_at,
        ends_at=sess.starts_at + timedelta(minutes=sess.duration_min),
        duration_min=sess.duration_min,
        status=sess.status.value,
        mentor=_mentor_brief(mentor, mentor_rating),
    )


async def mentor_ratings(s: AsyncSession, mentor_ids: set[int]) -> dict[int, Rating]:
    """Average rating and count of visible feedback per mentor."""
    if not mentor_ids:
        return {}
    rows = (
        await s.execute(
            select(Session.mentor_id, func.avg(Feedback.rating), func.count(Feedback.id))
            .join(Session, Session.id == Feedback.session_id)
            .where(Session.mentor_id.in_(mentor_ids), Feedback.hidden.is_(False))
            .group_by(Session.mentor_id)
        )
    ).all()
    return {m: Rating(average=round(float(avg), 2) if avg is not None else None, count=int(n)) for m, avg, n in rows}


async def session_rating(s: AsyncSession, session_id: int) -> Rating:
    avg, n = (
        await s.execute(
            select(func.avg(Feedback.rating), func.count(Feedback.id)).where(
                Feedback.session_id == session_id, Feedback.hidden.is_(False)
            )
        )
    ).one()
    return Rating(average=round(float(avg), 2) if avg is not None else None, count=int(n or 0))


def _can_see(sess: Session, viewer: Viewer | None) -> bool:
    if sess.status != S.draft:
        return True
    return viewer is not None and (viewer.id == sess.mentor_id or viewer.role == Role.admin.value)


def _can_manage(sess: Session, viewer: Viewer) -> bool:
    return viewer.id == sess.mentor_id or viewer.role == Role.admin.value


async def _load_for_change(s: AsyncSession, session_id: int, viewer: Viewer) -> Session:
    """The session row, locked for this transaction; 404 if the viewer may not see it,
    403 if they may see but not change it."""
    sess = await s.scalar(
        select(Session).where(Session.id == session_id).with_for_update().execution_options(populate_existing=True)
    )
    if sess is None or not _can_see(sess, viewer):
        raise NotFound.of("session")
    if not _can_manage(sess, viewer):
        raise Forbidden("Only the session's mentor or an admin may change it.")
    return sess


async def push_seats(broker: MemoryBroker, session_id: int, left: int) -> None:
    """Tell everyone viewing the session its new seat count (call after commit)."""
    await broker.publish(
        notifications.session_channel(session_id),
        {"type": "seats", "data": {"session_id": session_id, "seats_left": left}},
    )


async def push_status(broker: MemoryBroker, sess: Session) -> None:
    await broker.publish(
        notifications.session_channel(sess.id),
        {
            "type": "session.updated",
            "data": {
                "session_id": sess.id,
                "status": sess.status.value,
                "starts_at": sess.starts_at.isoformat(),
                "seats_left": seats_left(sess),
            },
        },
    )


async def _detail(s: AsyncSession, sess: Session, viewer: Viewer | None) -> SessionDetail:
    mentor = await s.get(User, sess.mentor_id)
    assert mentor is not None
    ratings = await mentor_ratings(s, {mentor.id})
    booking_id = None
    if viewer is not None:
        booking_id = await s.scalar(
            select(Booking.id).where(
                Booking.session_id == sess.id, Booking.learner_id == viewer.id, Booking.status.in_(ACTIVE_BOOKING)
            )
        )
    return detail_of(sess, mentor, ratings.get(mentor.id), await session_rating(s, sess.id), booking_id, viewer)


def detail_of(
    sess: Session,
    mentor: User,
    mentor_rating: Rating | None,
    rating: Rating,
    booking_id: int | None,
    viewer: Viewer | None,
) -> SessionDetail:
    """A session's detail from what was loaded for it."""
    base = to_out(sess, mentor, mentor_rating).model_dump()
    return SessionDetail(
        **base,
        curriculum=list(sess.curriculum or []),
        rating=rating,
        booked=booking_id is not None,
        booking_id=booking_id,
        is_owner=viewer is not None and viewer.id == sess.mentor_id,
        attendee_replay=sess.replay_allowed,
        created_at=sess.created_at,
        started_at=sess.started_at,
        ended_at=sess.ended_at,
    )


# ---------------------------------------------------------------- mentor actions


async def create_session(ctx: Context, mentor: Viewer, data: SessionCreate) -> SessionDetail:
    """A mentor's new draft."""
    if mentor.role != Role.mentor.value:
        raise Forbidden("Only mentors create sessions.")
    limits = await platform_settings(ctx.db)
    if data.capacity > limits["max_capacity"]:
        raise Invalid(
            f"Capacity may be at most {limits['max_capacity']}.",
            fields={"capacity": f"at most {limits['max_capacity']}"},
        )
    async with ctx.db.write() as s:
        user = await s.get(User, mentor.id)
        if user is None:
            raise NotFound.of("user")
        starts = to_utc(data.starts_at, data.timezone, user.timezone)
        sess = Session(
            mentor_id=mentor.id,
            title=data.title,
            description=data.description,
            curriculum=list(data.curriculum),
            domain=data.domain,
            skills=_tags(data.skills),
            price_cents=data.price_cents,
            currency=data.currency,
            capacity=data.capacity,
            seats_taken=0,
            starts_at=starts,
            duration_min=data.duration_min,
            status=S.draft,
            talk_time={},
            attendee_replay=data.attendee_replay if data.attendee_replay is not None else data.capacity == 1,
        )
        s.add(sess)
        await s.flush()
        return await _detail(s, sess, mentor)


def _tags(tags: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for t in tags:
        seen.setdefault(t.lower(), t)
    return list(seen.values())


async def update_session(ctx: Context, viewer: Viewer, session_id: int, data: SessionUpdate) -> SessionDetail:
    """Edit a draft or scheduled session (its mentor or an admin).

    Once seats are taken the price and currency are fixed and the capacity may
    not go below the seats taken; a scheduled session must keep a future start."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    limits = await platform_settings(ctx.db)
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        sess = await _load_for_change(s, session_id, viewer)
        if sess.status not in (S.draft, S.scheduled):
            raise Conflict(f"A {sess.status.value} session cannot be edited.", code="invalid_status")
        tz_name = changes.pop("timezone", None)
        if "starts_at" in changes:
            mentor = await s.get(User, sess.mentor_id)
            changes["starts_at"] = to_utc(data.starts_at, tz_name, mentor.timezone if mentor else "UTC")  # type: ignore[arg-type]
            if sess.status == S.scheduled and changes["starts_at"] <= utcnow():
                raise Invalid(
                    "A published session must start in the future.", fields={"starts_at": "must be in the future"}
                )
            if sess.status == S.scheduled:
                within_horizon(changes["starts_at"])
        if sess.seats_taken > 0:
            for key in ("price_cents", "currency"):
                if key in changes and changes[key] != getattr(sess, key):
                    raise Conflict("The price cannot change once seats are booked.", code="seats_taken")
        if "capacity" in changes:
            if changes["capacity"] < sess.seats_taken:
                raise Conflict(
                    f"{sess.seats_taken} seats are already booked; capacity cannot be lower.",
                    code="capacity_below_seats",
                )
            if changes["capacity"] > limits["max_capacity"]:
                raise Invalid(
                    f"Capacity may be at most {limits['max_capacity']}.",
                    fields={"capacity": f"at most {limits['max_capacity']}"},
                )
        if "skills" in changes:
            changes["skills"] = _tags(changes["skills"])
        smaller = "capacity" in changes and changes["capacity"] < sess.capacity
        moved = any(k in changes and changes[k] != getattr(sess, k) for k in ("starts_at", "duration_min"))
        for key, value in changes.items():
            setattr(sess, key, value)
        sess.updated_at = utcnow()
        if moved:
            sess.sequence += 1  # the calendar feeds' SEQUENCE: subscribed calendars take the new time
        if moved and sess.status == S.scheduled:
            learners = (
                await s.execute(
                    select(Booking.learner_id, User.timezone)
                    .join(User, User.id == Booking.learner_id)
                    .where(Booking.session_id == sess.id, Booking.status == BookingStatus.confirmed)
                )
            ).all()
            for learner_id, zone in learners:
                notes.append(
                    notifications.add(
                        s,
                        learner_id,
                        "session.updated",
                        f"Time changed: {sess.title}",
                        f"Now starts {spoken(sess.starts_at, zone)}.",
                        f"/sessions/{sess.id}",
                    )
                )
        await s.flush()
        if smaller:  # late cancellers' kept seats may no longer fit: they are refunded (docs/money.md)
            notes += await settlement.refund_resold_seats(s, sess.id, utcnow())
        out = await _detail(s, sess, viewer)
    await notifications.push(ctx.broker, notes)
    if sess.status == S.scheduled:
        await push_status(ctx.broker, sess)
    return out


async def publish_session(ctx: Context, viewer: Viewer, session_id: int) -> SessionDetail:
    """draft -> scheduled: needs a future start and a capacity within the platform maximum."""
    limits = await platform_settings(ctx.db)
    async with ctx.db.write() as s:
        sess = await _load_for_change(s, session_id, viewer)
        if sess.status != S.draft:
            raise Conflict(f"A {sess.status.value} session cannot be published.", code="invalid_status")
        await accounts.ensure_verified(s, sess.mentor_id, ctx.settings)  # it will take payments
        if sess.starts_at <= utcnow():
            raise Invalid(
                "The session must start in the future to be published.", fields={"starts_at": "must be in the future"}
            )
        within_horizon(sess.starts_at)
        if sess.capacity > limits["max_capacity"]:
            raise Invalid(
                f"Capacity may be at most {limits['max_capacity']}.",
                fields={"capacity": f"at most {limits['max_capacity']}"},
            )
        sess = await session_state.transition(s, session_id, S.scheduled)
        out = await _detail(s, sess, viewer)
    await push_status(ctx.broker, sess)
    return out


@dataclass
class CancelResult:
    session: SessionDetail
    refunded_bookings: int
    refunded_cents: int


async def cancel_session(ctx: Context, viewer: Viewer, session_id: int, reason: str = "") -> CancelResult:
    """Cancel (its mentor or an admin): every active booking is cancelled and refunded
    in full through the ledger, every learner is notified (``session.cancelled``)."""
    notes: list[Notification] = []
    refunded = 0
    count = 0
    async with ctx.db.write() as s:
        sess = await _load_for_change(s, session_id, viewer)
        if not session_state.can_transition(sess.status, S.cancelled):
            raise Conflict(f"A {sess.status.value} session cannot be cancelled.", code="invalid_status")
        sess = await session_state.transition(s, session_id, S.cancelled)
        now = utcnow()
        bookings = (
            await s.scalars(select(Booking).where(Booking.session_id == session_id, Booking.status.in_(ACTIVE_BOOKING)))
        ).all()
        zones = await user_zones(s, [b.learner_id for b in bookings])
        for b in bookings:
            body = f"{sess.title} on {spoken(sess.starts_at, zones.get(b.learner_id))} was cancelled; you get a full refund."
            if reason:
                body += f" Reason: {reason}"
            b.status = BookingStatus.cancelled
            b.cancelled_at = now
            b.settled_at = now
            refunded += await charges.refund(s, b, f"session {session_id} cancelled")
            count += 1
            notes.append(
                notifications.add(
                    s, b.learner_id, "session.cancelled", f"Cancelled: {sess.title}", body, f"/sessions/{session_id}"
                )
            )
        refunded += await _refund_late_cancellations(s, session_id, now)
        await room_access.revoke_for_seat(s, session_id)
        # Who cancelled a class with sold seats counts on the mentor's record (admin Users tab);
        # a deactivation cancels as an admin (even the mentor's own), so it is never counted.
        by_admin = viewer.role == "admin" or viewer.id != sess.mentor_id
        s.add(mentor_record.cancel_audit(viewer.id, by_admin, session_id, sess.mentor_id, count))
        if viewer.id != sess.mentor_id:
            notes.append(
                notifications.add(
                    s,
                    sess.mentor_id,
                    "session.cancelled",
                    f"Cancelled by an admin: {sess.title}",
                    reason or "An administrator cancelled this session.",
                    f"/sessions/{session_id}",
                )
            )
        await s.execute(
            update(Session)
            .where(Session.id == session_id)
            .values(seats_taken=0)
            .execution_options(synchronize_session=False)
        )
        refreshed = await s.scalar(
            select(Session).where(Session.id == session_id).execution_options(populate_existing=True)
        )
        assert refreshed is not None
        sess = refreshed
        out = await _detail(s, sess, viewer)
    await notifications.push(ctx.broker, notes)
    await push_seats(ctx.broker, session_id, 0)
    await push_status(ctx.broker, sess)
    return CancelResult(out, count, refunded)


async def _refund_late_cancellations(s: AsyncSession, session_id: int, now: datetime) -> int:
    """Learners who cancelled late kept paying for a class that will now not happen: refund them."""
    refunded = 0
    for b in await charges.kept_by_late_cancellations(s, session_id):
        b.settled_at = now
        refunded += await charges.refund(s, b, f"session {session_id} cancelled (late cancellation refunded)")
    return refunded


# ---------------------------------------------------------------- lifecycle (rooms, scheduler)


async def start_session(ctx: Context, session_id: int) -> Session:
    """scheduled -> live (the room opens). 409 ``invalid_status`` otherwise."""
    async with ctx.db.write() as s:
        sess = await session_state.transition(s, session_id, S.live)
    await push_status(ctx.broker, sess)
    return sess


async def complete_session(ctx: Context, session_id: int) -> Session:
    """End a scheduled|live session and settle its bookings from attendance, in one
    transaction (``api.services.money.settlement``): completed if the class took place,
    cancelled with full refunds if not. Earnings wait out the hold either way.

    409 ``invalid_status`` if already completed/cancelled (callers racing to end the
    same session: exactly one wins)."""
    from api.services.money import settlement

    return (await settlement.settle_session(ctx, session_id)).session


# ---------------------------------------------------------------- reading


async def get_session(db: Database, session_id: int, viewer: Viewer | None) -> SessionDetail:
    """One session with curriculum, ratings, seats and whether the viewer booked it.
    Drafts exist only for their mentor and admins (404 for everyone else)."""
    async with db.read() as s:
        sess = await s.get(Session, session_id)
        if sess is None or not _can_see(sess, viewer):
            raise NotFound.of("session")
        return await _detail(s, sess, viewer)


async def get_visible(s: AsyncSession, session_id: int, viewer: Viewer | None) -> Session:
    sess = await s.get(Session, session_id)
    if sess is None or not _can_see(sess, viewer):
        raise NotFound.of("session")
    return sess
