"""Message pages: the inbox and the conversation render from the messages service (bodies as
text, never HTML), strangers get the error page, [Message] starts or reopens a conversation,
the nav bar counts unread messages, mentors' public profiles, and the admins' Reports tab."""

from __future__ import annotations

from tests.conftest import signup
from tests.web.test_pages import HTML, page


async def write(user, to, body):
    resp = await user.post("/api/messages", json={"to_user_id": to.id, "body": body})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_inbox_and_conversation_show_messages_as_text(client, learner, mentor) -> None:
    msg = await write(learner, mentor, "<script>alert(1)</script> see https://example.com")
    status, html = await page(mentor, "/messages")
    assert status == 200
    assert f'href="/messages/{msg["conversation_id"]}"' in html and "Test Learner" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "data-messages-badge" in html and ">1</span>" in html  # the nav bar's unread count
    status, html = await page(mentor, f"/messages/{msg['conversation_id']}")
    assert status == 200 and 'id="composer"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; see https://example.com" in html
    assert '<a href="https://example.com' not in html  # links are text


async def test_strangers_get_the_error_page(client, learner, mentor, admin) -> None:
    msg = await write(learner, mentor, "Private question")
    stranger = await signup(client, "learner")
    for user in (stranger, admin):
        status, html = await page(user, f"/messages/{msg['conversation_id']}")
        assert status in (403, 404) and "Private question" not in html


async def test_message_button_opens_the_existing_conversation_or_a_new_one(client, learner, mentor) -> None:
    status, html = await page(learner, f"/messages/new?to={mentor.id}")
    assert status == 200 and "Write the first message to Test Mentor" in html
    msg = await write(learner, mentor, "Hi")
    resp = await learner.get(f"/messages/new?to={mentor.id}", headers=HTML, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/messages/{msg['conversation_id']}"
    assert (await page(learner, f"/messages/new?to={learner.id}"))[0] == 404


async def test_mentor_profile_has_the_message_button(client, learner, mentor) -> None:
    resp = await client.get(f"/mentors/{mentor.id}", headers=HTML)
    assert resp.status == 200
    html = await resp.text()
    assert "Test Mentor" in html and f'href="/messages/new?to={mentor.id}"' in html
    assert (await client.get(f"/mentors/{learner.id}", headers=HTML)).status == 404


async def test_phone_tabs_and_subtabs_have_messages(client, learner, admin) -> None:
    status, html = await page(learner, "/learner/home")
    assert status == 200 and 'href="/messages"' in html
    status, html = await page(admin, "/admin/dashboard")
    assert 'href="/admin/reports"' in html and 'data-testid="messages-link"' not in html


async def test_admin_reports_tab_shows_reported_conversations(client, learner, mentor, admin) -> None:
    msg = await write(learner, mentor, "Pay me outside the platform")
    await write(learner, await signup(client, "mentor"), "Not reported")
    resp = await mentor.post(
        f"/api/conversations/{msg['conversation_id']}/report", json={"reason": "Off-platform payment"}
    )
    assert resp.status == 201
    status, html = await page(admin, "/admin/reports")
    assert status == 200
    assert "Off-platform payment" in html and "Pay me outside the platform" in html
    assert "Not reported" not in html
    assert (await page(learner, "/admin/reports"))[0] == 403
