"""Messages between learners and mentors: the contract, who may write to whom, realtime
delivery and read receipts over /ws, blocking, reporting, rate limits and e-mail for
messages left unread."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from api.context import Context
from api.keys import DB, MAILER, SETTINGS
from api.models import DirectMessage, utcnow
from api.services import message_mail
from tests.api.helpers_marketplace import book, make_session
from tests.api.test_realtime import next_of, ws_for
from tests.conftest import delivered_mail, signup


async def send(user, to, body="Hello!"):
    return await user.post("/api/messages", json={"to_user_id": to.id, "body": body})


async def sent(user, to, body="Hello!"):
    resp = await send(user, to, body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_learner_writes_to_a_mentor_and_the_mentor_answers(client, learner, mentor):
    msg = await sent(learner, mentor, "Can you help with <b>asyncio</b>? https://example.com")
    assert {"id", "conversation_id", "created_at", "sender_id", "body"} <= msg.keys()
    assert msg["body"] == "Can you help with <b>asyncio</b>? https://example.com"  # stored as text
    cid = msg["conversation_id"]

    inbox = await (await mentor.get("/api/conversations")).json()
    assert inbox["unread"] == 1
    [conv] = inbox["items"]
    assert conv["id"] == cid and conv["unread"] == 1
    assert conv["other_user"]["id"] == learner.id and "email" not in conv["other_user"]
    assert conv["last_message"]["id"] == msg["id"]

    reply = await sent(mentor, learner, "Sure, book a slot.")
    assert reply["conversation_id"] == cid  # one conversation per pair
    # Writing reads what came before; the learner's message shows as read to them.
    page = await (await learner.get(f"/api/conversations/{cid}/messages")).json()
    assert [m["body"] for m in page["items"]] == [msg["body"], "Sure, book a slot."]
    assert page["items"][0]["read"] is True and page["has_more"] is False
    learner_inbox = await (await learner.get("/api/conversations")).json()
    assert learner_inbox["unread"] == 1

    resp = await learner.post(f"/api/conversations/{cid}/read")
    assert resp.status == 200
    assert (await resp.json()) == {"conversation_id": cid, "read_id": reply["id"], "unread": 0}
    assert (await (await learner.get("/api/conversations")).json())["unread"] == 0


async def test_pages_go_backwards(client, learner, mentor):
    ids = [(await sent(learner, mentor, f"m{i}"))["id"] for i in range(5)]
    cid = (await (await learner.get("/api/conversations")).json())["items"][0]["id"]
    first = await (await learner.get(f"/api/conversations/{cid}/messages?limit=2")).json()
    assert [m["id"] for m in first["items"]] == ids[3:] and first["has_more"]
    older = await (await learner.get(f"/api/conversations/{cid}/messages?limit=2&before={ids[3]}")).json()
    assert [m["id"] for m in older["items"]] == ids[1:3] and older["has_more"]
    oldest = await (await learner.get(f"/api/conversations/{cid}/messages?limit=2&before={ids[1]}")).json()
    assert [m["id"] for m in oldest["items"]] == ids[:1] and not oldest["has_more"]


async def test_who_may_write_first(client, learner, mentor, admin):
    other_learner = await signup(client, "learner")
    other_mentor = await signup(client, "mentor", domains=["Programming"])
    # A mentor may not start with a stranger, nor a learner with a learner.
    resp = await send(mentor, learner)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_allowed"
    assert (await send(learner, other_learner)).status == 403
    assert (await send(mentor, other_mentor)).status == 403
    # Admins neither write nor are written to; nobody writes to themselves.
    assert (await send(admin, learner)).status == 403
    assert (await send(learner, admin)).status == 404
    assert (await send(learner, learner)).status == 400
    assert (await learner.post("/api/messages", json={"to_user_id": 2**31 - 1, "body": "x"})).status == 404
    # A booking lets the mentor write first; so does a request sent to them.
    sid = await make_session(client, mentor.id)
    await book(client, sid, learner.id)
    assert (await send(mentor, learner)).status == 201
    resp = await other_learner.post(
        "/api/requests/create",
        json={
            "topic": "Help",
            "domain": "Programming",
            "mentor_id": other_mentor.id,
            "preferred_times": [(utcnow() + timedelta(days=2)).isoformat()],
        },
    )
    assert resp.status == 201
    assert (await send(other_mentor, other_learner)).status == 201


async def test_body_limits_and_verified_email(client, learner, mentor):
    assert (await send(learner, mentor, "x" * 4000)).status == 201
    resp = await send(learner, mentor, "x" * 4001)
    error = (await resp.json())["error"]
    # the field is named, so the page can point at the message box
    assert resp.status == 400 and error["code"] == "validation_error" and "body" in error["fields"]
    # spaces, zero-width spaces, a Braille blank, a NUL: nothing to read
    for blank in ("   ", "\u200b\u200b\u200b", "\u2800", "\u0000", "hi\u0000there"):
        resp = await send(learner, mentor, blank)
        assert resp.status == 400 and "body" in (await resp.json())["error"]["fields"]
    unverified = await signup(client, "learner", verified=False)
    resp = await send(unverified, mentor)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "email_unverified"


async def test_non_party_gets_404(client, learner, mentor, admin):
    cid = (await sent(learner, mentor))["conversation_id"]
    stranger = await signup(client, "learner")
    for method, path in (
        ("GET", f"/api/conversations/{cid}/messages"),
        ("POST", f"/api/conversations/{cid}/read"),
        ("POST", f"/api/conversations/{cid}/block"),
        ("POST", f"/api/conversations/{cid}/report"),
    ):
        assert (await stranger.request(method, path)).status == 404, path
    assert (await stranger.get("/api/conversations")).status == 200
    assert (await (await stranger.get("/api/conversations")).json())["items"] == []
    # Admins read only what is reported.
    assert (await admin.get(f"/api/conversations/{cid}/messages")).status in (403, 404)
    reports = await (await admin.get("/api/admin/conversation-reports")).json()
    assert reports["items"] == []


async def test_block_stops_messages_both_ways_and_report_reaches_admins(client, learner, mentor, admin):
    cid = (await sent(learner, mentor, "Buy my course at spam.example"))["conversation_id"]
    await sent(mentor, learner, "No thanks")
    resp = await mentor.post(f"/api/conversations/{cid}/block")
    assert resp.status == 200 and (await resp.json())["blocked"] is True
    for a, b in ((learner, mentor), (mentor, learner)):
        resp = await send(a, b)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    conv = (await (await learner.get("/api/conversations")).json())["items"][0]
    assert conv["can_write"] is False and conv["blocked"] is False

    resp = await mentor.post(f"/api/conversations/{cid}/report", json={"reason": "Spam"})
    assert resp.status == 201
    reports = (await (await admin.get("/api/admin/conversation-reports")).json())["items"]
    assert len(reports) == 1 and reports[0]["reason"] == "Spam"
    assert [m["body"] for m in reports[0]["messages"]] == ["Buy my course at spam.example", "No thanks"]
    assert (await learner.get("/api/admin/conversation-reports")).status == 403
    notes = (await (await admin.get("/api/notifications")).json())["items"]
    assert any(n["kind"] == "report.opened" and n["link"] == "/admin/reports" for n in notes)

    assert (await mentor.post(f"/api/conversations/{cid}/block", json={"blocked": False})).status == 200
    assert (await send(learner, mentor)).status == 201


async def test_rate_limit_per_sender(client, learner, mentor):
    limit = client.app[SETTINGS].message_burst_limit
    for _ in range(limit):
        assert (await send(learner, mentor)).status == 201
    resp = await send(learner, mentor)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    # Another sender is not affected.
    assert (await send(mentor, learner)).status == 201


async def test_message_and_read_receipt_arrive_live(client, learner, mentor):
    mentor_ws = await ws_for(mentor)
    learner_ws = await ws_for(learner)
    try:
        msg = await sent(learner, mentor, "Are you there?")
        got = await next_of(mentor_ws, "message")
        assert got["data"]["id"] == msg["id"] and got["data"]["body"] == "Are you there?"
        assert got["data"]["from"]["id"] == learner.id
        await mentor.post(f"/api/conversations/{msg['conversation_id']}/read")
        receipt = await next_of(learner_ws, "message.read")
        assert receipt["data"] == {
            "conversation_id": msg["conversation_id"],
            "reader_id": mentor.id,
            "read_id": msg["id"],
        }
    finally:
        await mentor_ws.close()
        await learner_ws.close()


async def test_unread_messages_are_mailed_once_per_hour(client, learner, mentor):
    ctx = Context.of(client.app)
    msg = await sent(learner, mentor, "First question")
    await sent(learner, mentor, "Second question")
    cid = msg["conversation_id"]
    now = utcnow()
    assert await message_mail.mail_unread(ctx, now) == []  # not 30 minutes yet
    later = now + timedelta(minutes=31)
    assert await message_mail.mail_unread(ctx, later) == [cid]
    assert await message_mail.mail_unread(ctx, later + timedelta(minutes=5)) == []  # batched: one e-mail
    outbox = await delivered_mail(client)
    mails = [t for p in outbox.glob("*.eml") if "sent you" in (t := p.read_text()) and mentor.email in t]
    assert len(mails) == 1
    assert "2 messages" in mails[0] and "Second question" in mails[0] and f"/messages/{cid}" in mails[0]
    # A newer message within the hour waits for the hour; then it is mailed once more.
    third = await sent(learner, mentor, "Third")
    async with client.app[DB].write() as s:
        await s.execute(
            update(DirectMessage)
            .where(DirectMessage.id == third["id"])
            .values(created_at=later + timedelta(minutes=10))
        )
    assert await message_mail.mail_unread(ctx, later + timedelta(minutes=45)) == []
    assert await message_mail.mail_unread(ctx, later + timedelta(minutes=61)) == [cid]
    # Read messages are not mailed; a blocked conversation gets nothing.
    await mentor.post(f"/api/conversations/{cid}/read")
    assert await message_mail.mail_unread(ctx, later + timedelta(hours=3)) == []
    await client.app[MAILER].flush()


async def test_blocked_conversations_are_not_mailed(client, learner, mentor):
    ctx = Context.of(client.app)
    cid = (await sent(learner, mentor))["conversation_id"]
    await mentor.post(f"/api/conversations/{cid}/block")
    assert await message_mail.mail_unread(ctx, utcnow() + timedelta(hours=1)) == []
