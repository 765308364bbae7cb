"""Mentor dashboard in a real browser: drafting → publishing → Scheduled, accepting a live
request, requesting a payout, the profile, and every subtab at phone and desktop widths."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from api.demo import DEMO_PASSWORD
from tests.browser.conftest import DEMO_ADMIN, DEMO_MENTOR, PASSWORD, Api, Tab

pytestmark = pytest.mark.browser

MENTOR_TABS = [
    "/mentor/dashboard",
    "/mentor/sessions",
    "/mentor/sessions?view=draft",
    "/mentor/sessions?view=past",
    "/mentor/sessions/new",
    "/mentor/availability",
    "/mentor/requests",
    "/mentor/earnings",
    "/mentor/analytics",
    "/mentor/profile",
    "/mentor/notifications",
]


def _mentor(api_client: Api) -> Api:
    return api_client.signup("mentor", domains=["Programming"], skills=["Python"])


def test_mentor_creates_a_draft_edits_publishes_and_sees_it_in_scheduled(tab: Tab, api_client: Api) -> None:
    mentor = _mentor(api_client)
    tab.login(mentor.user["email"], PASSWORD)
    page = tab.page
    tab.goto("/mentor/sessions?view=draft")
    expect(page.get_by_text("No drafts.")).to_be_visible()

    page.get_by_role("button", name="Create Session").click()
    modal = page.locator("#session-modal")
    expect(modal.get_by_role("heading", name="Create Session")).to_be_visible()
    expect(modal.locator("[data-tz-label]")).not_to_be_empty()
    modal.get_by_role("button", name="Save", exact=True).click()  # nothing filled in: field messages
    expect(modal.get_by_text("Give the session a title.")).to_be_visible()
    expect(modal.get_by_text("Choose or type a domain.")).to_be_visible()

    title = f"Async Python {uuid.uuid4().hex[:6]}"
    modal.get_by_label("Title").fill(title)
    modal.get_by_label("Description").fill("Event loops, tasks and cancellation.")
    modal.get_by_label("Curriculum topics").fill("Event loop\nTasks\nCancellation")
    modal.get_by_label("Domain").fill("Programming")
    modal.get_by_label("Skills").fill("Python, asyncio")
    modal.get_by_label("Price").fill("25")
    modal.get_by_label("Capacity").fill("5")
    modal.get_by_label("Start time").fill("17:30")
    modal.get_by_role("button", name="Save", exact=True).click()
    expect(modal).to_be_hidden()
    card = page.get_by_test_id("session-list").locator("li", has_text=title)
    expect(card).to_be_visible()
    expect(card).to_contain_text("0/5 booked")

    card.get_by_role("button", name="Edit").click()
    expect(modal.get_by_label("Title")).to_have_value(title)
    expect(modal.get_by_label("Curriculum topics")).to_have_value("Event loop\nTasks\nCancellation")
    title = f"{title} (edited)"
    modal.get_by_label("Title").fill(title)
    modal.get_by_role("button", name="Save", exact=True).click()
    card = page.get_by_test_id("session-list").locator("li", has_text=title)
    expect(card).to_be_visible()

    card.get_by_role("button", name="Publish").click()
    expect(card).to_be_hidden()
    expect(page.get_by_text("Published. It's now in Scheduled.")).to_be_visible()

    page.get_by_role("tab", name="Scheduled").click()
    expect(page).to_have_url(re.compile(r"view=scheduled"))
    card = page.get_by_test_id("session-list").locator("li", has_text=title)
    expect(card).to_be_visible()
    expect(card.get_by_text("scheduled", exact=True)).to_be_visible()
    expect(card.get_by_role("button", name="Cancel")).to_be_visible()
    items = mentor.call("GET", "/api/mentor/sessions?status=scheduled")["items"]
    saved = next(s for s in items if s["title"] == title)
    assert (saved["price_cents"], saved["capacity"], saved["domain"]) == (2500, 5, "Programming")
    assert saved["skills"] == ["Python", "asyncio"]
    assert tab.console_errors == []


def test_mentor_cancels_a_scheduled_session_after_confirming(tab: Tab, api_client: Api) -> None:
    mentor = _mentor(api_client)
    starts = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0).isoformat()
    s = mentor.call(
        "POST",
        "/api/sessions",
        {"title": f"To cancel {uuid.uuid4().hex[:6]}", "domain": "Programming", "starts_at": starts, "capacity": 3},
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    tab.login(mentor.user["email"], PASSWORD)
    tab.goto("/mentor/sessions?view=scheduled")
    card = tab.page.get_by_test_id("session-list").locator("li", has_text=s["title"])
    card.get_by_role("button", name="Cancel").click()
    dialog = tab.page.locator("#cancel-modal")
    expect(dialog.get_by_text("refunded in full")).to_be_visible()
    dialog.get_by_label("Reason (sent to learners)").fill("Sorry, I'm ill.")
    dialog.get_by_role("button", name="Cancel session").click()
    expect(card).to_be_hidden()
    expect(tab.page.get_by_text("Session cancelled.")).to_be_visible()
    assert mentor.call("GET", f"/api/sessions/{s['id']}")["status"] == "cancelled"


def test_mentor_proposes_on_a_live_request_and_the_confirmed_class_appears_in_scheduled(
    tab: Tab, api_client: Api
) -> None:
    mentor = _mentor(api_client)
    learner = api_client.signup("learner", interests=["Python"])
    tab.login(mentor.user["email"], PASSWORD)
    page = tab.page
    tab.goto("/mentor/requests")
    expect(page.get_by_test_id("mentor-request-list")).to_have_attribute("aria-busy", "false")
    expect(page.locator("body[data-realtime='open']")).to_be_attached()

    topic = f"Help with decorators {uuid.uuid4().hex[:6]}"
    when = (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    learner.call(
        "POST",
        "/api/requests/create",
        {
            "mentor_id": mentor.user["id"],
            "topic": topic,
            "domain": "Programming",
            "skills": ["Python"],
            "duration_min": 45,
            "preferred_times": [when.isoformat()],
            "description": "Nested wrappers confuse me.",
        },
    )
    card = page.get_by_test_id("mentor-request-list").locator("li", has_text=topic)
    expect(card).to_be_visible()  # arrived over /ws (request.new), no reload
    expect(card.get_by_text("New", exact=True)).to_be_visible()

    card.get_by_role("button", name="Accept").click()
    modal = page.locator("#accept-modal")
    expect(modal.get_by_role("radio").first).to_be_checked()
    # the price is chosen, never assumed: sending without one (or a silly one) says so
    modal.get_by_role("button", name="Send proposal").click()
    expect(modal.locator('[data-error-for="price_cents"]')).to_have_text("Enter a price: 0 for a free session.")
    modal.get_by_label("Price (USD)").fill("99999999")
    modal.get_by_role("button", name="Send proposal").click()
    expect(modal.locator('[data-error-for="price_cents"]')).to_have_text("Price must be between $0 and $10,000.")
    modal.get_by_label("Price (USD)").fill("12")
    # accepting only proposes (issue 14): nothing is scheduled or charged until the learner confirms
    modal.get_by_role("button", name="Send proposal").click()
    expect(modal).to_be_hidden()
    expect(page.get_by_text(re.compile(r"^Proposal sent:"))).to_be_visible()
    mine = next(r for r in learner.call("GET", "/api/requests")["items"] if r["topic"] == topic)
    assert not any(b["session"]["title"] == topic for b in learner.call("GET", "/api/bookings")["items"])
    seen = mine["proposal"]  # the confirm binds to the proposal the learner saw
    learner.call(
        "POST",
        f"/api/requests/{mine['id']}/proposal/confirm",
        {"price_cents": seen["price_cents"], "starts_at": seen["starts_at"], "mentor_id": seen["mentor"]["id"]},
    )

    tab.goto("/mentor/sessions?view=scheduled")
    scheduled = page.get_by_test_id("session-list").locator("li", has_text=topic)
    expect(scheduled).to_be_visible()
    expect(scheduled).to_contain_text("1/1 booked")
    expect(scheduled).to_contain_text("$12.00")
    booking = learner.call("GET", "/api/bookings")["items"]
    assert any(b["session"]["title"] == topic for b in booking)
    assert tab.console_errors == []


def _mentor_with_funds(api_client: Api) -> tuple[str, int]:
    """A demo mentor (not the one other suites use) with at least the minimum payout available."""
    admin = api_client.login(DEMO_ADMIN, DEMO_PASSWORD)
    mentors = admin.call("GET", "/api/admin/users?role=mentor&page_size=50")["items"]
    for m in mentors:
        if m["email"] == DEMO_MENTOR or not m["email"].endswith("@peerlearn.local"):
            continue
        e = api_client.login(m["email"], DEMO_PASSWORD).call("GET", "/api/earnings")
        if e["available_cents"] >= max(e["min_payout_cents"], 1000) + 1000:
            return m["email"], e["available_cents"]
    raise AssertionError("no demo mentor has earnings available to pay out")


def test_mentor_requests_a_payout(tab: Tab, api_client: Api) -> None:
    email, available = _mentor_with_funds(api_client)
    tab.login(email, DEMO_PASSWORD)
    page = tab.page
    tab.goto("/mentor/earnings")
    expect(page.get_by_test_id("test-mode")).to_be_visible()
    expect(page.locator('[data-figure="available_cents"]')).to_have_text(f"${available / 100:,.2f}")
    page.get_by_label(re.compile(r"^Amount")).fill("10.00")
    page.get_by_role("button", name="Request Payout").click()
    expect(page.get_by_text("Payout of $10.00 requested (test mode).")).to_be_visible()
    expect(page.locator('[data-figure="available_cents"]')).to_have_text(f"${(available - 1000) / 100:,.2f}")
    history = page.get_by_test_id("payout-history")
    expect(history.locator("tr", has_text="$10.00").first).to_be_visible()
    me = api_client.login(email, DEMO_PASSWORD).call("GET", "/api/earnings")
    assert me["available_cents"] == available - 1000

    page.get_by_label(re.compile(r"^Amount")).fill("999999")  # more than available: the API's message
    page.get_by_role("button", name="Request Payout").click()
    expect(page.locator("#payout-form [data-form-error]")).to_be_visible()
    # The browser logs the refused request itself; anything else would be a page error.
    assert [e for e in tab.console_errors if "status of 409" not in e] == []


def test_mentor_profile_saves_expertise_and_bio(tab: Tab, api_client: Api) -> None:
    mentor = _mentor(api_client)
    tab.login(mentor.user["email"], PASSWORD)
    page = tab.page
    tab.goto("/mentor/profile")
    page.get_by_label("Bio").fill("Twenty years of Python.")
    page.get_by_label("Skills").fill("Python, Testing")
    page.locator("label", has_text="Data Science").click()
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_text("Changes saved")).to_be_visible()
    tab.page.reload()
    expect(page.get_by_label("Bio")).to_have_value("Twenty years of Python.")
    me = mentor.call("GET", "/api/users/me")
    assert me["skills"] == ["Python", "Testing"] and set(me["domains"]) == {"Programming", "Data Science"}


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_every_mentor_subtab_loads_without_console_errors(open_tab: object, width: int, height: int) -> None:
    t: Tab = open_tab(width, height)  # type: ignore[operator]
    t.login(DEMO_MENTOR)
    # Desktop walks every subtab; the phone the ones with lists, tables and charts.
    for path in MENTOR_TABS if width >= 1000 else MENTOR_TABS[1:2] + MENTOR_TABS[5:8]:
        t.goto(path)
        expect(t.page.locator("[aria-busy='true']")).to_have_count(0)  # its lists have loaded
    t.goto("/mentor/analytics")
    expect(t.page.locator('[data-chart="enrollments"] svg[role="img"]')).to_be_visible()
    expect(t.page.locator('[data-figure="enrollments_total"]')).not_to_have_text("–")
    if width < 500:
        nav = t.page.get_by_role("navigation", name="Dashboard sections")
        assert nav.evaluate("el => el.scrollWidth > el.clientWidth"), "subtabs scroll sideways on phones"
        t.goto("/mentor/earnings")
        expect(t.page.get_by_test_id("payout-history").locator("thead")).to_be_hidden()
        t.shot("mentor-earnings-phone")
    assert t.console_errors == [], t.console_errors


def test_mentor_gets_ready_waits_for_learner_then_starts_class(tab: Tab, api_client: Api) -> None:
    """From T–10 min: [I'm Ready] → "Waiting for Learner…" → a learner's readiness arrives live →
    [Start Class] → /room/{id}."""
    mentor = _mentor(api_client)
    learner = api_client.signup("learner")
    starts = (datetime.now(timezone.utc) + timedelta(minutes=6)).replace(microsecond=0).isoformat()
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": f"Soon {uuid.uuid4().hex[:6]}",
            "domain": "Programming",
            "starts_at": starts,
            "capacity": 2,
            "duration_min": 30,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    tab.login(mentor.user["email"], PASSWORD)
    page = tab.page
    tab.goto("/mentor/sessions?view=scheduled")
    card = page.get_by_test_id("session-list").locator("li", has_text=s["title"])
    expect(card.get_by_text(f"{learner.user['full_name']}: not ready")).to_be_visible()
    card.get_by_role("button", name="I'm Ready").click()
    expect(card.get_by_text("Waiting for Learner…")).to_be_visible()
    expect(page.locator(f"body[data-subscribed~='{s['id']}']")).to_be_attached()

    learner.call("POST", f"/api/rooms/{s['id']}/ready", {"ready": True})
    expect(card.get_by_text(f"{learner.user['full_name']}: Ready")).to_be_visible()  # live, over /ws
    start = card.get_by_role("link", name="Start Class")
    expect(start).to_have_attribute("href", f"/room/{s['id']}")
    assert tab.console_errors == []
