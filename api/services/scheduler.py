"""Background work on a clock: T–10 min reminders, e-mail reminders 24 h and 1 h ahead
(``api.services.reminder_mail``), settling sessions that are over, releasing
earnings whose hold is over, expiring mentors' proposals and requests, e-mailing
messages left unread (api/services/message_mail.py).

Safe with several server processes: each reminder is claimed first by
inserting ``SchedulerClaim(key="reminder:{session_id}")`` in the same
transaction that stages the notifications and sets ``reminder_sent_at`` — a
primary-key conflict means another process already sent it, so each reminder
goes out exactly once. Completing goes through the session state machine
(a conditional update: one process wins, the others get 409 and move on), and
request expiry is a conditional update too.

``run_once(ctx, now=...)`` is one pass (tests call it); ``Scheduler`` runs it every
``settings.scheduler_interval_seconds`` when ``settings.scheduler_enabled`` (started by
api/lifecycle.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.context import Context
from api.models import Booking, BookingStatus, Notification, SchedulerClaim, Session, SessionStatus
from api.services import notifications
from api.services.errors import Conflict
from api.services.local_time import spoken, user_zones

log = logging.getLogger(__name__)

REMIND_BEFORE = timedelta(minutes=10)
# A reminder is still worth sending a little after the start (e.g. after a restart), not later.
REMIND_LATE_LIMIT = timedelta(minutes=5)
ACTIVE = (BookingStatus.confirmed, BookingStatus.attended)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RunResult:
    reminders: list[int] = field(default_factory=list)
    mail_reminders: list[str] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    expired_proposals: list[int] = field(default_factory=list)
    expired_requests: list[int] = field(default_factory=list)
    mailed_messages: list[int] = field(default_factory=list)


async def claim(s: object, key: str) -> None:
    """Stage the exactly-once claim ``key`` (IntegrityError at flush/commit if taken)."""
    s.add(SchedulerClaim(key=key))  # type: ignore[attr-defined]
    await s.flush()  # type: ignore[attr-defined]


async def send_reminders(ctx: Context, now: datetime) -> list[int]:
    """Remind the mentor and every booked learner of sessions starting within 10 minutes."""
    async with ctx.db.read() as s:
        due = (
            await s.scalars(
                select(Session.id)
                .where(
                    Session.status.in_((SessionStatus.scheduled, SessionStatus.live)),
                    Session.reminder_sent_at.is_(None),
                    Session.starts_at <= now + REMIND_BEFORE,
                    Session.starts_at > now - REMIND_LATE_LIMIT,
                )
                .order_by(Session.starts_at)
            )
        ).all()
    sent: list[int] = []
    for sid in due:
        notes: list[Notification] = []
        try:
            async with ctx.db.write() as s:
                await claim(s, f"reminder:{sid}")
                sess = await s.get(Session, sid)
                if sess is None or sess.reminder_sent_at is not None:
                    continue
                sess.reminder_sent_at = now
                learners = (
                    await s.scalars(
                        select(Booking.learner_id).where(Booking.session_id == sid, Booking.status.in_(ACTIVE))
                    )
                ).all()
                minutes = max(0, int((sess.starts_at - now).total_seconds() // 60))
                when = f"in {minutes} minutes" if minutes else "now"
                zones = await user_zones(s, [sess.mentor_id, *learners])
                for uid in [sess.mentor_id, *learners]:
                    notes.append(
                        notifications.add(
                            s,
                            uid,
                            "session.reminder",
                            f"Starting {when}: {sess.title}"[:200],
                            f"{sess.title} starts at {spoken(sess.starts_at, zones.get(uid))}.",
                            f"/room/{sid}",
                        )
                    )
        except IntegrityError:
            continue  # another process claimed it: it sends the reminder, not us
        await notifications.push(ctx.broker, notes)
        sent.append(sid)
    return sent


async def complete_over(ctx: Context, now: datetime) -> list[int]:
    """Sessions whose end (start + duration + room grace) has passed are settled from
    attendance: completed if the class took place, cancelled and refunded if nobody
    started it (``api.services.money.settlement``)."""
    from api.services import catalog

    grace = timedelta(minutes=ctx.settings.room_grace_minutes)
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(Session.id, Session.starts_at, Session.duration_min)
                .where(Session.status.in_((SessionStatus.scheduled, SessionStatus.live)), Session.starts_at < now)
                .order_by(Session.starts_at)
            )
        ).all()
    done: list[int] = []
    for sid, starts, duration in rows:
        if starts + timedelta(minutes=duration) + grace > now:
            continue
        try:
            await catalog.complete_session(ctx, sid)  # state machine + settlement, one transaction
        except Conflict:
            continue  # completed or cancelled meanwhile (another process won)
        done.append(sid)
    return done


async def run_once(ctx: Context, now: datetime | None = None) -> RunResult:
    """One pass of every job; each job's failure is logged and does not stop the others."""
    from api.services import message_mail, reminder_mail, request_proposals, requests
    from api.services.money import settlement

    now = now or utcnow()
    result = RunResult()
    # Proposals lapse before requests expire: a lapsed proposal reopens its request,
    # which then expires in the same pass if all its preferred times are gone.
    jobs = (
        ("reminders", send_reminders),
        ("mail_reminders", reminder_mail.send_due),
        ("completed", complete_over),
        ("released", settlement.release_due),
        ("expired_proposals", request_proposals.expire_due),
        ("expired_requests", requests.expire_due),
        ("mailed_messages", message_mail.mail_unread),
    )
    for name, job in jobs:
        try:
            setattr(result, name, await job(ctx, now))
        except Exception:  # noqa: BLE001 - one broken job must not starve the others
            log.exception("scheduler job %s failed", name)
    return result


class Scheduler:
    """The background loop: ``run_once`` every ``interval`` seconds once started.

    ``started`` / ``exited`` (and ``ran`` after each pass) let tests and health checks see
    it; ``start`` and ``stop`` are idempotent, as in aiortc's RTCRtpSender.
    """

    def __init__(self, ctx: Context, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self.started = asyncio.Event()
        self.exited = asyncio.Event()
        self.ran = asyncio.Event()  # set after each pass
        self.runs = 0
        self.last_run: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.started.wait()  # cancelled before its first step, the loop would never exit
        self._stopping = True  # as well: a job may swallow the cancel (see api/background.py)
        self._task.cancel()
        await self.exited.wait()

    async def _loop(self) -> None:
        self.started.set()
        try:
            while not self._stopping:
                await run_once(self.ctx)
                self.runs += 1
                self.last_run = utcnow()
                self.ran.set()
                await asyncio.sleep(max(0.05, self.interval))
        except asyncio.CancelledError:
            pass
        except Exception:  # run_once isolates each job: this is a bug, say so loudly
            log.exception("the scheduler loop stopped")
        finally:
            self.exited.set()
