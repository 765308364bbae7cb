"""Issue 14: single-line text fields refuse control characters, and e-mail goes through the
outbox: a request only queues it, the background sender delivers and retries, so a mail
failure never fails (or half-completes) a booking."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes

from sqlalchemy import select, update

from api.keys import DB, MAILER
from api.mailer import MAX_ATTEMPTS, Mailer, deliver_due, header_value, purge_finished, utcnow
from api.models import MailOutbox, MailStatus, Session
from tests.api.market import book, draft, published
from tests.conftest import PASSWORD, delivered_mail, signup


async def test_control_characters_refused_in_single_line_fields(client, mentor, learner) -> None:
    resp = await mentor.post(
        "/api/sessions",
        json={
            "title": "Intro\r\nBcc: victim@example.com",
            "domain": "Programming",
            "starts_at": "2031-01-01T10:00:00Z",
        },
    )
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "validation_error" and "title" in err["fields"]
    sess = await draft(mentor)
    upd = await mentor.post(f"/api/sessions/{sess['id']}/update", json={"title": "a\u2028b"})
    assert upd.status == 400 and "title" in (await upd.json())["error"]["fields"]
    req = await learner.post(
        "/api/requests/create",
        json={
            "mentor_id": mentor.id,
            "topic": "Help\nwith\tasyncio",
            "domain": "Programming",
            "preferred_times": ["2031-01-01T10:00:00Z"],
        },
    )
    assert req.status == 400 and "topic" in (await req.json())["error"]["fields"]
    reg = await client.post(
        "/api/auth/register",
        json={"email": "crlf@example.com", "password": PASSWORD, "full_name": "Eve\r\nX-Injected: 1"},
    )
    assert reg.status == 400 and "full_name" in (await reg.json())["error"]["fields"]


async def test_mail_failure_never_fails_the_booking_and_is_retried(client, mentor, learner, monkeypatch) -> None:
    sess = await published(mentor)
    calls: list[bytes] = []

    async def smtp_down(self: Mailer, msg: object) -> None:
        calls.append(b"x")
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(Mailer, "deliver", smtp_down)
    resp = await book(learner, sess["id"])
    assert resp.status == 201, await resp.text()
    mailer = client.app[MAILER]
    await mailer.flush()  # the sender tried (and failed) once
    async with client.app[DB].read() as s:
        row = (await s.scalars(select(MailOutbox).where(MailOutbox.subject.like("Booking confirmed%")))).one()
    assert calls and row.status == MailStatus.pending and row.attempts >= 1
    assert row.next_attempt_at > utcnow() and "smtp down" in row.last_error
    # The same booking again is a 409, not a second seat: the first one fully committed.
    assert (await book(learner, sess["id"])).status == 409
    # SMTP is back: the retry (due later, by backoff) delivers it.
    monkeypatch.undo()
    assert await deliver_due(mailer, now=utcnow() + timedelta(hours=2)) >= 1
    outbox = await delivered_mail(client)
    subjects = [message_from_bytes(p.read_bytes())["Subject"] for p in outbox.glob("*.eml")]
    assert f"Booking confirmed: {sess['title']}" in subjects
    # Delivered: the row keeps no copy of the message (mails carry one-time links).
    async with client.app[DB].read() as s:
        rows = (await s.scalars(select(MailOutbox))).all()
    assert rows and all(r.status == MailStatus.sent and r.message == b"" for r in rows)
    assert await purge_finished(client.app[DB], now=utcnow() + timedelta(days=31)) == len(rows)


async def test_mail_gives_up_after_max_attempts(client, learner, monkeypatch) -> None:
    async def broken(self: Mailer, msg: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Mailer, "deliver", broken)
    await client.post("/api/auth/password-reset", json={"email": learner.email})
    mailer = client.app[MAILER]
    await mailer.flush()
    later = utcnow()
    for _ in range(MAX_ATTEMPTS):
        later += timedelta(hours=2)
        await deliver_due(mailer, now=later)
    async with client.app[DB].read() as s:
        row = (await s.scalars(select(MailOutbox).where(MailOutbox.subject.like("Reset%")))).one()
    assert row.status == MailStatus.failed and row.attempts == MAX_ATTEMPTS and row.message == b""


async def test_legacy_title_with_line_break_cannot_inject_headers(client, mentor) -> None:
    sess = await published(mentor)
    async with client.app[DB].write() as s:  # written before titles were validated
        await s.execute(update(Session).where(Session.id == sess["id"]).values(title="Old\r\nBcc: victim@example.com"))
    learner = await signup(client, "learner")
    assert (await book(learner, sess["id"])).status == 201
    mails = [message_from_bytes(p.read_bytes()) for p in (await delivered_mail(client)).glob("*.eml")]
    confirmation = next(m for m in mails if m["To"] == learner.email and "Booking" in m["Subject"])
    assert confirmation["Bcc"] is None and "\n" not in confirmation["Subject"]
    assert header_value("a\r\nb\x00c") == "a b c"


async def test_smtp_gets_bare_envelope_addresses(tmp_path, monkeypatch) -> None:
    import aiosmtplib

    sent: list[dict] = []

    async def fake_send(message, **kw):  # type: ignore[no-untyped-def]
        sent.append({"message": message, **kw})

    monkeypatch.setattr(aiosmtplib, "send", fake_send)
    mailer = Mailer(
        outbox=tmp_path,
        sender="PeerLearn <no-reply@peerlearn.local>",
        smtp_url="smtp+starttls://user:p%40ss@mail.example:587",
    )
    await mailer.deliver(mailer.build("Ann Learner <ann@example.com>", "Hi", "Body"))
    (call,) = sent
    assert call["sender"] == "no-reply@peerlearn.local" and call["recipients"] == ["ann@example.com"]
    assert call["hostname"] == "mail.example" and call["port"] == 587 and call["start_tls"] is True
    assert call["password"] == "p@ss" and b"Subject: Hi" in call["message"]
