"""Whole journeys in one flow each (issue 6 "Done when"):

- a learner from landing to feedback: landing → [Get Started] → register wizard → mailed link →
  [Sign In] → Browse (search) → [View Details] → [Book Now] → [Confirm] → My Sessions; the class
  takes place (the mentor opens and ends the room) → Past → ★ rating and comment → [Submit Feedback];
- a mentor from drafting to payout: [Create Session] → draft → [Publish] → a learner books → the
  class takes place → Past shows it → Earnings (available) → [Request Payout] → payout history.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api, LiveServer, Tab, complete_session
from tests.browser.test_accounts import _mailed_link

pytestmark = pytest.mark.browser


def _published_session(api_client: Api, title: str) -> tuple[dict[str, Any], Api]:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    starts = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": title,
            "description": "Decorators, closures and context managers.",
            "curriculum": ["Closures"],
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": 3000,
            "capacity": 4,
            "starts_at": starts.isoformat(),
            "duration_min": 60,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    return s, mentor


def test_learner_from_landing_to_feedback(tab: Tab, live_server: LiveServer, api_client: Api) -> None:
    title = f"Pythonic patterns {uuid.uuid4().hex[:6]}"
    s, mentor = _published_session(api_client, title)
    page = tab.page

    # landing → Get Started → the register wizard (learner)
    tab.goto("/")
    expect(page.get_by_role("heading", name="Learn from Experts Live")).to_be_visible()
    page.get_by_role("link", name="Get Started").first.click()
    expect(page).to_have_url(re.compile(r"/register$"))
    page.get_by_role("radio", name=re.compile(r"^Learner")).check()
    page.locator('[data-step="1"] [data-next]').click()
    addr = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Full Name").fill("Jules Journey")
    page.get_by_label("Email").fill(addr)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.locator('[data-step="2"] [data-next]').click()
    page.get_by_label("Interests").fill("Python")
    page.locator('[data-step="3"] [data-next]').click()
    expect(page.locator("#review")).to_contain_text(addr)
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_test_id("registered-notice")).to_contain_text("check your e-mail")
    tab.goto(_mailed_link(live_server, addr, "/verify-email").replace(live_server.url, ""))
    expect(page.get_by_text("Your e-mail address is confirmed")).to_be_visible()

    # login
    tab.goto("/login")
    page.get_by_label("Email").fill(addr)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/learner/dashboard$"))

    # browse → details → book
    tab.goto("/learner/home")
    page.get_by_label("Search", exact=True).fill(title)
    card = page.get_by_test_id("session-list").locator("article, li", has_text=title).first
    expect(card).to_be_visible()
    card.get_by_role("link", name="View Details").click()
    expect(page).to_have_url(re.compile(rf"/sessions/{s['id']}$"))
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    page.get_by_role("button", name="Book Now").click()
    page.locator("#booking-modal").get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/learner/sessions"))
    expect(page.get_by_test_id("booking-list")).to_contain_text(title)

    # the class takes place
    complete_session(live_server, mentor, s["id"])

    # Past → ★ feedback
    page.get_by_role("tab", name="Past").click()
    expect(page).to_have_url(re.compile(r"view=past"))
    item = page.locator(f'li[data-session-id="{s["id"]}"]')
    expect(item).to_be_visible()
    item.locator(f'label[for="r-{s["id"]}-4"]').click()
    item.get_by_label("Comments").fill("Clear examples, great pace.")
    item.get_by_role("button", name="Submit Feedback").click()
    expect(item.get_by_text("Thanks for your feedback!")).to_be_visible()
    tab.shot("journey-learner-feedback")
    reviews = api_client.call("GET", f"/api/sessions/{s['id']}/reviews")
    assert reviews["rating"]["count"] == 1 and reviews["rating"]["average"] == 4
    assert tab.console_errors == [], tab.console_errors


def test_mentor_from_drafting_to_payout(tab: Tab, live_server: LiveServer, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    assert mentor.user is not None
    tab.login(mentor.user["email"], PASSWORD)
    page = tab.page

    # draft through the form
    tab.goto("/mentor/sessions?view=draft")
    page.get_by_role("button", name="Create Session").click()
    modal = page.locator("#session-modal")
    title = f"Testing with pytest {uuid.uuid4().hex[:6]}"
    modal.get_by_label("Title").fill(title)
    modal.get_by_label("Description").fill("Fixtures, parametrize and plugins.")
    modal.get_by_label("Curriculum topics").fill("Fixtures\nParametrize")
    modal.get_by_label("Domain").fill("Programming")
    modal.get_by_label("Skills").fill("Python, pytest")
    modal.get_by_label("Price").fill("40")
    modal.get_by_label("Capacity").fill("4")
    modal.get_by_label("Start time").fill("17:30")
    modal.get_by_role("button", name="Save", exact=True).click()
    expect(modal).to_be_hidden()
    card = page.get_by_test_id("session-list").locator("li", has_text=title)
    expect(card).to_be_visible()

    # publish → Scheduled
    card.get_by_role("button", name="Publish").click()
    expect(card).to_be_hidden()
    page.get_by_role("tab", name="Scheduled").click()
    card = page.get_by_test_id("session-list").locator("li", has_text=title)
    expect(card).to_be_visible()
    sid = int(card.get_attribute("data-session-id") or 0)

    # two learners book; the class takes place
    for _ in range(2):
        learner = api_client.signup("learner", interests=["Python"])
        learner.call("POST", "/api/bookings/create", {"session_id": sid}, headers={"Idempotency-Key": uuid.uuid4().hex})
    expect(card).to_contain_text("2/4 booked")
    complete_session(live_server, mentor, sid, hold_over=True)

    # Past shows it
    page.get_by_role("tab", name="Past").click()
    past = page.get_by_test_id("session-list").locator(f'li[data-session-id="{sid}"]')
    expect(past).to_be_visible()
    expect(past.get_by_text("completed", exact=True)).to_be_visible()

    # Earnings: once the hold after the class is over they are available → Request Payout → history
    earned = mentor.call("GET", "/api/earnings")
    assert earned["available_cents"] >= 2 * 4000 * 0.5, earned
    tab.goto("/mentor/earnings")
    expect(page.locator('[data-figure="available_cents"]')).to_have_text(f"${earned['available_cents'] / 100:,.2f}")
    page.get_by_label(re.compile(r"^Amount")).fill("50.00")
    page.get_by_role("button", name="Request Payout").click()
    expect(page.get_by_text("Payout of $50.00 requested (test mode).")).to_be_visible()
    expect(page.get_by_test_id("payout-history").locator("tr", has_text="$50.00").first).to_be_visible()
    expect(page.locator('[data-figure="available_cents"]')).to_have_text(
        f"${(earned['available_cents'] - 5000) / 100:,.2f}"
    )
    tab.shot("journey-mentor-payout")
    assert mentor.call("GET", "/api/earnings")["available_cents"] == earned["available_cents"] - 5000
    assert tab.console_errors == [], tab.console_errors
