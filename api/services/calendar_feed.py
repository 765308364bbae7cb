"""Personal calendar feeds: ``/api/calendar/{secret}.ics``, which Google, Apple and Outlook subscribe to.

The secret in the address is the only credential (calendar apps send no
cookies), so it is long and random, and regenerating it revokes the old
address at once. The feed lists the user's classes from a month back on: a
learner's booked ones (under the same UID as the invite mailed at booking,
so the subscribed event and the mailed one are the same event) and a
mentor's own. A moved class keeps its UID and raises its SEQUENCE; a
cancelled class, or a seat the learner gave up, stays in the feed with
``STATUS:CANCELLED`` so subscribed calendars drop it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.db import Database
from api.models import Booking, BookingStatus, Session, SessionStatus, User
from api.models_scheduling import CalendarFeed
from api.schemas.scheduling import CalendarFeedOut
from api.services import ics
from api.services.errors import NotFound

# Past classes stay this long, so a calendar that polls rarely still sees how they ended.
KEEP_PAST = timedelta(days=30)
REFRESH = "PT1H"


def utcnow() -> datetime:
    return datetime.now(UTC)


def feed_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/api/calendar/{secret}.ics"


def sequence_of(sess: Session, booking: Booking | None = None) -> int:
    """RFC 5545 SEQUENCE: the class's own (moves, cancellation), one more for a seat given up."""
    given_up = booking is not None and booking.status == BookingStatus.cancelled
    return sess.sequence + (1 if given_up else 0)


async def current(db: Database, user_id: int, public_url: str) -> CalendarFeedOut:
    """The user's feed address (made on first use; the same until regenerated)."""
    async with db.write() as s:
        row = await s.get(CalendarFeed, user_id)
        if row is None:
            row = CalendarFeed(user_id=user_id, secret=secrets.token_urlsafe(32), created_at=utcnow())
            s.add(row)
            await s.flush()
        return CalendarFeedOut(url=feed_url(public_url, row.secret), created_at=row.created_at)


async def regenerate(db: Database, user_id: int, public_url: str) -> CalendarFeedOut:
    """A new secret address; the old one answers 404 from now on."""
    async with db.write() as s:
        row = await s.get(CalendarFeed, user_id)
        if row is None:
            row = CalendarFeed(user_id=user_id)
            s.add(row)
        row.secret = secrets.token_urlsafe(32)
        row.created_at = utcnow()
        await s.flush()
        return CalendarFeedOut(url=feed_url(public_url, row.secret), created_at=row.created_at)


def _event(sess: Session, mentor_name: str, public_url: str, uid: str, cancelled: bool, sequence: int) -> list[str]:
    link = f"{public_url.rstrip('/')}/sessions/{sess.id}"
    return ics.vevent(
        uid=uid,
        start=sess.starts_at,
        end=sess.starts_at + timedelta(minutes=sess.duration_min),
        summary=f"PeerLearn: {sess.title}",
        description=f"Live session with {mentor_name}. Join from {link}",
        url=link,
        organizer_name=mentor_name,
        organizer_email="no-reply@peerlearn.local",
        stamp=sess.updated_at,
        status="CANCELLED" if cancelled else "CONFIRMED",
        sequence=sequence,
    )


async def render(db: Database, secret: str, public_url: str, now: datetime | None = None) -> bytes:
    """The .ics body of the feed behind ``secret`` (404 for an unknown or revoked one)."""
    since = (now or utcnow()) - KEEP_PAST
    async with db.read() as s:
        feed = await s.scalar(select(CalendarFeed).where(CalendarFeed.secret == secret))
        user = await s.get(User, feed.user_id) if feed is not None else None
        if feed is None or user is None or not user.is_active:
            raise NotFound.of("calendar")
        events: list[list[str]] = []
        seats = (
            await s.execute(
                select(Booking, Session, User.full_name)
                .join(Session, Session.id == Booking.session_id)
                .join(User, User.id == Session.mentor_id)
                .where(Booking.learner_id == user.id, Session.starts_at >= since)
                .order_by(Session.starts_at, Booking.id)
            )
        ).all()
        for booking, sess, mentor_name in seats:
            cancelled = booking.status == BookingStatus.cancelled or sess.status == SessionStatus.cancelled
            uid = f"booking-{booking.id}-session-{sess.id}@peerlearn"  # the mailed invite's UID
            events.append(_event(sess, mentor_name, public_url, uid, cancelled, sequence_of(sess, booking)))
        taught = (
            await s.scalars(
                select(Session)
                .where(Session.mentor_id == user.id, Session.starts_at >= since, Session.status != SessionStatus.draft)
                .order_by(Session.starts_at, Session.id)
            )
        ).all()
        for sess in taught:
            uid = f"session-{sess.id}@peerlearn"
            cancelled = sess.status == SessionStatus.cancelled
            events.append(_event(sess, user.full_name, public_url, uid, cancelled, sequence_of(sess)))
    return ics.calendar(events, name=f"PeerLearn · {user.full_name}", refresh=REFRESH)
