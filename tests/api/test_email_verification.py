"""Issue 14: money needs a confirmed e-mail address. A learner books (pays), a mentor
publishes and is paid out only once verified: 403 email_unverified otherwise; the pages
say so and offer to send the link again."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from api.keys import DB, SETTINGS
from tests.api.market import draft, published, set_platform
from tests.conftest import PASSWORD, delivered_mail, mark_verified, signup


async def _refused(resp) -> None:
    assert resp.status == 403, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "email_unverified" and "/verify-email" in err["message"]


async def test_unverified_learner_cannot_book(client, mentor) -> None:
    sess = await published(mentor, price_cents=1500)
    learner = await signup(client, "learner", verified=False)
    await _refused(await learner.post("/api/bookings/create", json={"session_id": sess["id"]}))
    await mark_verified(client, learner.id)
    assert (await learner.post("/api/bookings/create", json={"session_id": sess["id"]})).status == 201


async def test_unverified_mentor_cannot_publish_or_be_paid(client, learner) -> None:
    mentor = await signup(client, "mentor", verified=False, domains=["Programming"])
    sess = await draft(mentor)  # drafting is fine
    await _refused(await mentor.post(f"/api/sessions/{sess['id']}/publish"))
    await set_platform(client, min_payout_cents=100)
    await _refused(await mentor.post("/api/earnings/payout", json={"amount_cents": 100}))
    await mark_verified(client, mentor.id)
    assert (await mentor.post(f"/api/sessions/{sess['id']}/publish")).status == 200


async def test_resend_link_then_verify_unlocks_booking(client, mentor) -> None:
    sess = await published(mentor)
    learner = await signup(client, "learner", verified=False)
    resp = await learner.post("/api/auth/verify-email/resend")
    assert resp.status == 200 and "on its way" in (await resp.json())["message"]
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted((await delivered_mail(client)).glob("*.eml"), key=lambda p: p.stat().st_mtime)
    ]
    links = [
        re.search(r"/verify-email\?token=([\w-]+)", m.get_body(("plain",)).get_content()).group(1)
        for m in mails
        if m["To"] == learner.email
    ]
    assert len(links) == 2  # at registration, and again now
    assert (await client.post("/api/auth/verify-email", json={"token": links[-1]})).status == 200
    assert (await learner.post("/api/bookings/create", json={"session_id": sess["id"]})).status == 201
    again = await learner.post("/api/auth/verify-email/resend")
    assert "already confirmed" in (await again.json())["message"]


async def test_pages_show_the_banner_and_resend_by_form(client) -> None:
    learner = await signup(client, "learner", verified=False)
    await client.post("/api/auth/login", json={"email": learner.email, "password": PASSWORD})
    page = await (await client.get("/learner/home")).text()
    assert 'data-testid="verify-banner"' in page and 'action="/verify-email/resend"' in page
    csrf = client.session.cookie_jar.filter_cookies(client.make_url("/"))["pl_csrf"].value
    resp = await client.post("/verify-email/resend", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/verify-email?sent=1"
    assert "on its way" in await (await client.get("/verify-email?sent=1")).text()
    await mark_verified(client, learner.id)
    assert 'data-testid="verify-banner"' not in await (await client.get("/learner/home")).text()


async def test_demo_accounts_are_verified(client) -> None:
    from sqlalchemy import func, select

    from api.demo import load_demo
    from api.models import User

    await load_demo(client.app[SETTINGS])
    async with client.app[DB].read() as s:
        unverified = await s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.email.like("%@peerlearn.local"), User.email_verified_at.is_(None))
        )
    assert unverified == 0
