"""Money rules in a real browser (issue 14): a mentor's price is only a proposal until the
learner confirms it; after a class the learner can report a problem, which holds the
mentor's payment until an admin refunds the learner (admin Payments tab)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_ADMIN, PASSWORD, Api, LiveServer, Tab, complete_session

pytestmark = pytest.mark.browser


def test_learner_confirms_a_proposed_price(tab: Tab, phone: Tab, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    learner = api_client.signup("learner", interests=["Python"])
    assert mentor.user is not None and learner.user is not None
    topic = f"Async pricing {uuid.uuid4().hex[:6]}"
    when = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    req = learner.call(
        "POST",
        "/api/requests/create",
        {
            "mentor_id": mentor.user["id"],
            "topic": topic,
            "domain": "Programming",
            "duration_min": 45,
            "preferred_times": [when.isoformat(), (when + timedelta(days=1)).isoformat()],
        },
    )

    # The mentor proposes one of the learner's times and a price from their Requests page.
    tab.login(mentor.user["email"], PASSWORD)
    tab.goto("/mentor/requests")
    card = tab.page.locator(f"#request-{req['id']}")
    card.get_by_role("button", name="Accept").click()
    dialog = tab.page.locator("#accept-modal")
    expect(dialog.get_by_role("radio")).to_have_count(2)
    dialog.get_by_label("Price (USD)").fill("25")
    dialog.get_by_role("button", name="Send proposal").click()
    expect(dialog).to_be_hidden()
    assert learner.call("GET", "/api/bookings")["total"] == 0  # proposed, nothing booked or charged

    # The learner (on a phone) sees the proposal and confirms it: booked and charged only now.
    phone.login(learner.user["email"], PASSWORD)
    phone.goto("/learner/requests")
    item = phone.page.locator(f'li[data-request-id="{req["id"]}"]')
    proposal = item.get_by_test_id("proposal")
    expect(proposal).to_contain_text("$25.00")
    expect(proposal).to_contain_text("Nothing is charged until you confirm")
    expect(item.get_by_role("button", name="Decline")).to_be_visible()
    phone.shot("money-proposal-390")
    item.get_by_role("button", name="Confirm and pay $25.00").click()
    item = phone.page.locator(f'li[data-request-id="{req["id"]}"]')
    expect(item).to_have_attribute("data-status", "accepted")
    expect(item.get_by_role("link", name="View session")).to_be_visible()
    expect(item.get_by_test_id("proposal")).to_have_count(0)
    booked = learner.call("GET", "/api/bookings")
    assert booked["total"] == 1 and booked["items"][0]["price_cents"] == 2500
    assert booked["items"][0]["payment_ref"] and booked["items"][0]["session"]["title"] == topic
    assert not tab.console_errors and not phone.console_errors, tab.console_errors + phone.console_errors


def test_learner_reports_a_problem_and_an_admin_refunds(tab: Tab, live_server: LiveServer, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    learner = api_client.signup("learner", interests=["Python"])
    assert learner.user is not None
    title = f"Reported class {uuid.uuid4().hex[:6]}"
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": title,
            "description": "A class with a problem.",
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": 2000,
            "capacity": 2,
            "starts_at": starts.isoformat(),
            "duration_min": 60,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    complete_session(live_server, mentor, s["id"])  # the class took place; the hold is running

    # My Sessions → Past → [Report a problem]
    tab.login(learner.user["email"], PASSWORD)
    tab.goto("/learner/sessions?view=past")
    item = tab.page.locator(f'li[data-session-id="{s["id"]}"]')
    item.get_by_role("button", name="Report a problem").click()
    dialog = tab.page.locator("#report-modal")
    dialog.get_by_label("What went wrong?").fill("The mentor's audio cut out for half of the class.")
    dialog.get_by_role("button", name="Send report").click()
    expect(dialog).to_be_hidden()
    expect(item.get_by_test_id("report-status")).to_have_text("Problem reported: under review")
    tab.page.reload()
    expect(tab.page.locator(f'li[data-session-id="{s["id"]}"]').get_by_test_id("report-status")).to_be_visible()
    tab.shot("money-report-1280")
    assert mentor.call("GET", "/api/earnings")["pending_cents"] > 0

    # Admin → Payments: the open report → [Refund learner] → refunded
    report = learner.call("GET", "/api/reports")["items"][0]
    tab.login(DEMO_ADMIN)
    tab.goto("/admin/payments")
    row = tab.page.get_by_test_id("reports-rows").locator(f'tr[data-row-id="{report["id"]}"]')
    expect(row).to_contain_text(title)
    expect(row).to_contain_text("audio cut out")
    row.get_by_role("button", name="Refund learner").click()
    tab.page.get_by_role("dialog").get_by_role("button", name="Refund", exact=True).click()
    expect(row).to_contain_text("refunded")
    past = learner.call("GET", "/api/bookings?when=past")
    assert [b["refunded"] for b in past["items"] if b["session_id"] == s["id"]] == [True]
    earned = mentor.call("GET", "/api/earnings")
    assert (earned["pending_cents"], earned["available_cents"]) == (0, 0)
    assert not tab.console_errors, tab.console_errors


def test_learner_sees_a_moved_class_and_accepts_the_new_time(tab: Tab, api_client: Api) -> None:
    """docs/money.md: the booked time is a contract. The mentor moves a sold class; the learner's
    My Sessions says so and offers the new time or a full refund; accepting makes it the booked one."""
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    learner = api_client.signup("learner", interests=["Python"])
    assert mentor.user is not None and learner.user is not None
    when = (datetime.now(UTC) + timedelta(days=5)).replace(second=0, microsecond=0)
    sess = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": f"Moved {uuid.uuid4().hex[:6]}",
            "domain": "Programming",
            "price_cents": 4000,
            "capacity": 2,
            "starts_at": when.isoformat(),
            "duration_min": 60,
        },
    )
    mentor.call("POST", f"/api/sessions/{sess['id']}/publish")
    booking = learner.call("POST", "/api/bookings/create", {"session_id": sess["id"]})
    mentor.call("POST", f"/api/sessions/{sess['id']}/update", {"starts_at": (when - timedelta(days=4)).isoformat()})

    tab.login(learner.user["email"], PASSWORD)
    tab.goto("/learner/sessions")
    notice = tab.page.locator(f'[data-terms-changed="{booking["id"]}"]')
    expect(notice).to_contain_text("The mentor changed this class")
    expect(tab.page.get_by_role("button", name="Cancel with full refund")).to_be_visible()
    tab.shot("money-moved-class")
    tab.page.get_by_role("button", name="Accept new time").click()
    expect(notice).to_have_count(0)
    assert learner.call("GET", f"/api/bookings/{booking['id']}")["terms_changed"] is False
