"""Messages in the browser: a learner writes to a mentor from the mentor's profile on a phone,
the mentor's inbox and nav badge update live, the mentor answers, the learner sees the answer
without reloading, and the mentor sees the read receipt."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api, Tab

pytestmark = pytest.mark.browser


def test_learner_messages_a_mentor_from_the_profile_and_the_mentor_answers_live(
    phone: Tab, open_tab, api_client: Api
) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"])
    learner = api_client.signup("learner")
    mentor_tab: Tab = open_tab()
    mentor_tab.login(mentor.user["email"], PASSWORD)  # type: ignore[index]
    mentor_tab.goto("/messages")
    expect(mentor_tab.page.locator("#conversations-empty")).to_be_visible()
    expect(mentor_tab.page.locator("body[data-realtime=open]")).to_be_attached()

    phone.login(learner.user["email"], PASSWORD)  # type: ignore[index]
    phone.goto(f"/mentors/{mentor.user['id']}")  # type: ignore[index]
    phone.page.get_by_test_id("message-mentor").click()
    expect(phone.page.get_by_text("Write the first message to Test Mentor")).to_be_visible()
    phone.page.get_by_label("Message to Test Mentor").fill("   ")  # nothing to send: the page says so
    phone.page.get_by_role("button", name="Send").click()
    expect(phone.page.locator("#composer-error")).to_have_text("Write a message first.")
    phone.page.get_by_label("Message to Test Mentor").fill("Hi! <b>Is</b> asyncio covered in your class?")
    phone.page.get_by_role("button", name="Send").click()
    expect(phone.page).to_have_url(re.compile(r"/messages/\d+$"))
    expect(phone.page.get_by_test_id("message-list")).to_contain_text("Hi! <b>Is</b> asyncio covered")
    expect(phone.page.get_by_test_id("bottom-tabs").get_by_role("link", name="Messages")).to_be_visible()

    # The mentor's inbox and badge follow without a reload.
    mentor_page = mentor_tab.page
    expect(mentor_page.get_by_test_id("conversation-list")).to_contain_text("Test Learner")
    expect(mentor_page.locator("[data-messages-badge]").first).to_have_text("1")
    mentor_page.get_by_test_id("conversation-list").get_by_role("link").first.click()
    expect(mentor_page.get_by_test_id("message-list")).to_contain_text("Hi! <b>Is</b> asyncio covered")
    expect(mentor_page.locator("[data-messages-badge]").first).to_be_hidden()
    mentor_page.get_by_label("Message to Test Learner").fill("Yes, in the second hour.")
    mentor_page.keyboard.press("Enter")

    # The learner's open conversation shows the answer live, and reading it tells the mentor.
    expect(phone.page.get_by_test_id("message-list")).to_contain_text("Yes, in the second hour.")
    expect(mentor_page.get_by_test_id("read-receipt")).to_be_visible()
    phone.shot("messages-conversation-390")
    mentor_tab.shot("messages-conversation-1280")
    assert phone.console_errors == [] and mentor_tab.console_errors == []
