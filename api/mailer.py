"""Outgoing e-mail: .eml files in the outbox by default, SMTP when configured."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str  # e.g. "text/calendar"


class Mailer:
    """Sends messages; never raises into the caller's business transaction."""

    def __init__(self, *, outbox: Path, sender: str, smtp_url: str = "") -> None:
        self.outbox = outbox
        self.sender = sender
        self.smtp_url = smtp_url

    def build(self, to: str, subject: str, body: str, attachments: tuple[Attachment, ...] = ()) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="peerlearn.local")
        msg.set_content(body)
        for att in attachments:
            maintype, subtype = att.mime.split("/", 1)
            msg.add_attachment(att.content, maintype=maintype, subtype=subtype, filename=att.filename)
        return msg

    async def send(self, to: str, subject: str, body: str, attachments: tuple[Attachment, ...] = ()) -> None:
        msg = self.build(to, subject, body, attachments)
        try:
            if self.smtp_url:
                await self._send_smtp(msg)
            else:
                await asyncio.to_thread(self._write_eml, msg)
        except Exception:  # noqa: BLE001 - a mail failure is logged, not fatal
            log.exception("could not send e-mail to %s", to)

    def _write_eml(self, msg: EmailMessage) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{uuid.uuid4().hex}.eml"
        path.write_bytes(bytes(msg))

    async def _send_smtp(self, msg: EmailMessage) -> None:
        import aiosmtplib

        u = urlparse(self.smtp_url)
        await aiosmtplib.send(
            msg,
            hostname=u.hostname or "localhost",
            port=u.port or (465 if u.scheme == "smtps" else 25),
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
            use_tls=u.scheme == "smtps",
            start_tls=True if u.scheme == "smtp+starttls" else None,
        )
