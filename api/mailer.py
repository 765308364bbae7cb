"""Outgoing e-mail through an outbox table: requests enqueue, a background sender delivers.

``Mailer.send`` builds the message and stores it in ``mail_outbox``; it never
talks to SMTP or the disk inside a request, and never raises into the caller
(a booking that committed stays committed whatever happens to its e-mail).
``MailSender`` (started with the app's other background loops) claims due rows,
delivers them (``.eml`` files in the outbox directory by default, SMTP when
``PEERLEARN_SMTP_URL`` is set) and retries failures with exponential backoff
until ``MAX_ATTEMPTS``. A row is claimed with a conditional update before
delivery, so several processes never send the same message twice.

Messages carry one-time links (e-mail confirmation, password reset) whose
tokens the database otherwise keeps only as hashes: a row's body is wiped once
it is sent or given up on, and finished rows are deleted after ``KEEP_FINISHED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from sqlalchemy import delete, or_, select, update

from api.models import MailOutbox, MailStatus

if TYPE_CHECKING:
    from api.db import Database

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
# A claimed row whose sender died is retried after this long.
CLAIM_TTL = timedelta(minutes=2)
POLL_SECONDS = 5.0
COALESCE_SECONDS = 0.2
BATCH = 20
KEEP_FINISHED = timedelta(days=30)
PURGE_EVERY = timedelta(hours=1)
# Header values: a CR/LF would start a new header (injection) and raises in the email package.
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def utcnow() -> datetime:
    return datetime.now(UTC)


def header_value(value: str) -> str:
    """One header line: control characters and line breaks become a space."""
    return _HEADER_BREAKS.sub(" ", value).strip()


def backoff(attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1``: 30 s, 1 min, 2 min ... capped at 1 h, ±20 % jitter."""
    doublings: int = 2 ** max(0, attempts - 1)
    delay = min(BACKOFF_MAX, BACKOFF_BASE * doublings)
    return delay * random.uniform(0.8, 1.2)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str  # e.g. "text/calendar"


class Mailer:
    """Builds messages and puts them in the outbox; ``MailSender`` delivers them."""

    def __init__(self, *, outbox: Path, sender: str, smtp_url: str = "") -> None:
        self.outbox = outbox
        self.sender = sender
        self.smtp_url = smtp_url
        self.db: Database | None = None
        # Set by send(): the sender wakes at once instead of at its next poll.
        self.wake = asyncio.Event()

    def attach(self, db: Database | None) -> None:
        """Use this database's outbox (None: deliver at once, for scripts without a sender)."""
        self.db = db

    def build(self, to: str, subject: str, body: str, attachments: tuple[Attachment, ...] = ()) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = header_value(self.sender)
        msg["To"] = header_value(to)
        msg["Subject"] = header_value(subject)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="peerlearn.local")
        msg.set_content(body)
        for att in attachments:
            maintype, subtype = att.mime.split("/", 1)
            msg.add_attachment(att.content, maintype=maintype, subtype=subtype, filename=header_value(att.filename))
        return msg

    async def send(self, to: str, subject: str, body: str, attachments: tuple[Attachment, ...] = ()) -> None:
        """Queue one message for the sender. Never raises: failures are logged."""
        try:
            msg = self.build(to, subject, body, attachments)
            if self.db is None:
                await self.deliver(msg)
                return
            async with self.db.write() as s:
                s.add(
                    MailOutbox(
                        recipient=header_value(to)[:320],
                        subject=header_value(subject)[:300],
                        message=bytes(msg),
                        status=MailStatus.pending,
                        attempts=0,
                        next_attempt_at=utcnow(),
                    )
                )
            self.wake.set()
        except Exception:  # a mail problem never fails the caller's request
            log.exception("could not queue e-mail to %s", to)

    async def deliver(self, msg: EmailMessage | bytes) -> None:
        """Hand one message to the transport (raises on failure; the sender retries)."""
        raw = msg if isinstance(msg, bytes) else bytes(msg)
        if self.smtp_url:
            await self._send_smtp(raw)
        else:
            await asyncio.to_thread(self._write_eml, raw)

    async def flush(self, timeout: float = 10.0) -> None:
        """Deliver everything due now and wait until it is out (tests, CLI scripts)."""
        if self.db is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await deliver_due(self)
            if not await _due_count(self.db) or loop.time() > deadline:
                return
            await asyncio.sleep(0.02)  # a row another task claimed is being delivered

    def _write_eml(self, raw: bytes) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        tmp = self.outbox / f".{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(raw)
        tmp.rename(tmp.with_name(tmp.name[1:-4] + ".eml"))  # readers never see a half-written file

    async def _send_smtp(self, raw: bytes) -> None:
        from email import message_from_bytes

        import aiosmtplib

        u = urlparse(self.smtp_url)
        parsed = message_from_bytes(raw)
        # The envelope wants bare addresses ("PeerLearn <no-reply@x>" -> "no-reply@x").
        recipients = [addr for _, addr in getaddresses(parsed.get_all("To", [])) if addr]
        await aiosmtplib.send(
            raw,
            sender=parseaddr(parsed.get("From", self.sender))[1],
            recipients=recipients,
            hostname=u.hostname or "localhost",
            port=u.port or (465 if u.scheme == "smtps" else 25),
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
            use_tls=u.scheme == "smtps",
            start_tls=True if u.scheme == "smtp+starttls" else None,
            timeout=30,
        )


def _due(now: datetime) -> Any:
    return (
        MailOutbox.status == MailStatus.pending,
        MailOutbox.next_attempt_at <= now,
        or_(MailOutbox.locked_until.is_(None), MailOutbox.locked_until < now),
    )


async def _due_count(db: Database) -> int:
    now = utcnow()
    async with db.read() as s:
        ids = (
            await s.scalars(
                select(MailOutbox.id)
                .where(MailOutbox.status == MailStatus.pending, MailOutbox.next_attempt_at <= now)
                .limit(1)
            )
        ).all()
    return len(ids)


async def deliver_due(mailer: Mailer, now: datetime | None = None) -> int:
    """One pass: claim the due messages (one write), deliver them, record the outcomes (one
    write); returns how many went out. Few writes matter: SQLite has a single writer."""
    db = mailer.db
    if db is None:
        return 0
    now = now or utcnow()
    async with db.read() as s:
        ids = (await s.scalars(select(MailOutbox.id).where(*_due(now)).order_by(MailOutbox.id).limit(BATCH))).all()
    if not ids:
        return 0
    # The claim's expiry doubles as this pass's mark: rows another process claimed meanwhile
    # carry a different one, so only ours are read back.
    claim = now + CLAIM_TTL + timedelta(microseconds=random.randrange(1, 1_000_000))
    async with db.write() as s:
        await s.execute(
            update(MailOutbox)
            .where(MailOutbox.id.in_(ids), *_due(now))
            .values(locked_until=claim)
            .execution_options(synchronize_session=False)
        )
        rows = (
            await s.execute(
                select(MailOutbox.id, MailOutbox.message, MailOutbox.attempts, MailOutbox.recipient)
                .where(MailOutbox.id.in_(ids), MailOutbox.locked_until == claim)
                .order_by(MailOutbox.id)
            )
        ).all()
    sent = 0
    outcomes: list[tuple[int, dict[str, Any]]] = []
    for mail_id, raw, attempts, to in rows:
        try:
            await mailer.deliver(raw)
        except Exception as exc:  # noqa: BLE001 - any transport failure is retried later
            attempts += 1
            gave_up = attempts >= MAX_ATTEMPTS
            (log.error if gave_up else log.warning)(
                "e-mail %s to %s failed (attempt %d/%d): %s", mail_id, to, attempts, MAX_ATTEMPTS, exc
            )
            values: dict[str, Any] = {
                "attempts": attempts,
                "locked_until": None,
                "last_error": f"{type(exc).__name__}: {exc}"[:1000],
                "next_attempt_at": now + backoff(attempts),
            }
            if gave_up:
                values.update(status=MailStatus.failed, message=b"")
        else:
            sent += 1
            values = {
                "status": MailStatus.sent,
                "sent_at": utcnow(),
                "locked_until": None,
                "attempts": attempts + 1,
                "message": b"",
            }  # its links live on only in the inbox
        outcomes.append((mail_id, values))
    async with db.write() as s:
        for mail_id, values in outcomes:
            await s.execute(update(MailOutbox).where(MailOutbox.id == mail_id).values(**values))
    return sent


async def purge_finished(db: Database, now: datetime | None = None) -> int:
    """Delete sent and failed rows older than ``KEEP_FINISHED``; returns how many."""
    cutoff = (now or utcnow()) - KEEP_FINISHED
    async with db.write() as s:
        result = await s.execute(
            delete(MailOutbox).where(
                MailOutbox.status.in_((MailStatus.sent, MailStatus.failed)), MailOutbox.created_at < cutoff
            )
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class MailSender:
    """The background loop: woken by ``Mailer.send``, and every ``POLL_SECONDS`` for retries
    and messages queued by other processes. ``started`` / ``exited`` as the scheduler's."""

    def __init__(self, mailer: Mailer, poll_seconds: float = POLL_SECONDS) -> None:
        self.mailer = mailer
        self.poll_seconds = poll_seconds
        self.started = asyncio.Event()
        self.exited = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-sender")

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.started.wait()  # cancelled before its first step, the loop would never exit
        # The flag as well as the cancel: on Python 3.11, asyncio.wait_for returns the result
        # and drops a cancel that arrives as its awaitable completes (a wake-up at shutdown).
        self._stopping = True
        self._task.cancel()
        await self.exited.wait()

    async def _run(self) -> None:
        self.started.set()
        purged_at: datetime | None = None
        try:
            while not self._stopping:
                self.mailer.wake.clear()
                try:
                    while await deliver_due(self.mailer) == BATCH:
                        pass  # a full batch: there may be more right away
                    if self.mailer.db is not None and (purged_at is None or utcnow() - purged_at > PURGE_EVERY):
                        purged_at = utcnow()
                        await purge_finished(self.mailer.db)
                except asyncio.CancelledError:
                    raise
                except Exception:  # e.g. the database is away: try again later
                    log.exception("mail sender pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.mailer.wake.wait(), self.poll_seconds)
                    await asyncio.sleep(COALESCE_SECONDS)  # a burst of mails: one pass, fewer writes
        except asyncio.CancelledError:
            pass
        finally:
            self.exited.set()
