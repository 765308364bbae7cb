"""E-mail reminders 24 hours and 1 hour before each class, to the mentor and every booked learner.

Exactly once whatever the number of server processes: each reminder is a
``SchedulerClaim`` (``mail-reminder:{lead}:{session}:{sequence}:{user}``) inserted in the
same transaction as its message's ``mail_outbox`` row, so a process that loses
the race (primary-key conflict) queues nothing, and one that crashes before
committing leaves the reminder for the next pass. The class's SEQUENCE is part
of the key: a class moved after its reminder went out is reminded again for
its new time. The outbox's sender then
delivers it like every other e-mail (retries, SMTP or .eml files).

A reminder is due from ``lead`` before the start until the next one takes over
(the 1-hour one until five minutes before; the in-app T–10 banner does the rest),
and only to people who were already in the class at ``lead`` before it: a class
booked three hours ahead gets no "tomorrow" e-mail. People opt out in their
profile (``preferences``: ``remind_email_24h``, ``remind_email_1h``, or all
e-mail with ``email_notifications``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.context import Context
from api.mailer import header_value
from api.models import Booking, BookingStatus, MailOutbox, MailStatus, SchedulerClaim, Session, SessionStatus, User
from api.services.local_time import spoken

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lead:
    name: str  # in claim keys and preference names
    before: timedelta  # due from this long before the start ...
    until: timedelta  # ... until this long before it
    words: str


LEADS = (
    Lead("24h", timedelta(hours=24), timedelta(hours=1), "tomorrow"),
    Lead("1h", timedelta(hours=1), timedelta(minutes=5), "in 1 hour"),
)


@dataclass(frozen=True)
class Due:
    lead: Lead
    session_id: int
    sequence: int
    user_id: int

    @property
    def key(self) -> str:
        return f"mail-reminder:{self.lead.name}:{self.session_id}:{self.sequence}:{self.user_id}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def wants(user: User, lead: Lead) -> bool:
    """The user's choice in their profile (reminders are on unless turned off)."""
    prefs = user.preferences or {}
    return bool(prefs.get("email_notifications", True)) and bool(prefs.get(f"remind_email_{lead.name}", True))


async def due_now(ctx: Context, now: datetime) -> list[Due]:
    """Reminders whose time has come and that nobody has sent yet."""
    horizon = max(lead.before for lead in LEADS)
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(
                    Session.id,
                    Session.mentor_id,
                    Session.starts_at,
                    Session.sequence,
                    Booking.learner_id,
                    Booking.created_at,
                )
                .join(Booking, Booking.session_id == Session.id)
                .where(
                    Session.status == SessionStatus.scheduled,
                    Booking.status == BookingStatus.confirmed,
                    Session.starts_at > now,
                    Session.starts_at <= now + horizon,
                )
            )
        ).all()
        found: dict[str, Due] = {}
        # The mentor is in the class from its first booking on (a group class may open seats early).
        mentor_since: dict[int, datetime] = {}
        for sid, _, _, _, _, booked_at in rows:
            mentor_since[sid] = min(mentor_since.get(sid, booked_at), booked_at)
        for sid, mentor_id, starts, sequence, learner_id, booked_at in rows:
            for lead in LEADS:
                if not starts - lead.before <= now < starts - lead.until:
                    continue
                for uid, since in ((learner_id, booked_at), (mentor_id, mentor_since[sid])):
                    if since <= starts - lead.before:
                        due = Due(lead, sid, sequence, uid)
                        found[due.key] = due
        if not found:
            return []
        sent = set((await s.scalars(select(SchedulerClaim.key).where(SchedulerClaim.key.in_(found)))).all())
    return [d for k, d in sorted(found.items()) if k not in sent]


def message(ctx: Context, due: Due, user: User, sess: Session, mentor_name: str) -> tuple[str, str]:
    """(subject, body) of one reminder, in the recipient's time zone."""
    base = ctx.settings.public_url.rstrip("/")
    with_whom = "you teach" if user.id == sess.mentor_id else f"with {mentor_name}"
    subject = f"Reminder: {sess.title} starts {due.lead.words}"
    body = (
        f"Hi {user.full_name},\n\n"
        f'"{sess.title}" ({with_whom}) starts {due.lead.words}:\n'
        f"{spoken(sess.starts_at, user.timezone)} ({sess.duration_min} min)\n\n"
        f"Join the room: {base}/room/{sess.id}\n"
        f"Details: {base}/sessions/{sess.id}\n\n"
        f"You can turn these reminders off in your profile: {base}/profile\n"
    )
    return subject, body


async def send_one(ctx: Context, due: Due) -> bool:
    """Claim and queue one reminder in one transaction; False if another process has it."""
    try:
        async with ctx.db.write() as s:
            s.add(SchedulerClaim(key=due.key))
            await s.flush()  # a taken claim fails here, before anything is queued
            sess = await s.get(Session, due.session_id)
            user = await s.get(User, due.user_id)
            mentor = await s.get(User, sess.mentor_id) if sess is not None else None
            if sess is None or user is None or mentor is None or not user.is_active or not wants(user, due.lead):
                return False  # the claim stands: an opted-out reminder is not retried
            subject, body = message(ctx, due, user, sess, mentor.full_name)
            msg = ctx.mailer.build(user.email, subject, body)
            s.add(
                MailOutbox(
                    recipient=header_value(user.email)[:320],
                    subject=header_value(subject)[:300],
                    message=bytes(msg),
                    status=MailStatus.pending,
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    ctx.mailer.wake.set()
    return True


async def send_due(ctx: Context, now: datetime | None = None) -> list[str]:
    """Scheduler job: queue every reminder due at ``now``; the claim keys of those queued here."""
    queued = []
    for due in await due_now(ctx, now or utcnow()):
        if await send_one(ctx, due):
            queued.append(due.key)
    return queued
