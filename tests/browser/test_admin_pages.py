"""Admin dashboard in a real browser: deactivating a user (who then cannot sign in), settings
that persist, live health figures, sessions, feedback moderation, ML metrics with Train now,
recordings, and the phone layout (scrolling subtabs, tables as cards)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from api.demo import DEMO_PASSWORD
from tests.browser.conftest import DEMO_ADMIN, PASSWORD, Api, Tab

pytestmark = pytest.mark.browser

ADMIN_TABS = [
    "/admin/users",
    "/admin/sessions",
    "/admin/requests",
    "/admin/payments",
    "/admin/feedback",
    "/admin/ml-metrics",
    "/admin/settings",
    "/admin/health",
    "/admin/recordings",
    "/admin/notifications",
]


def _admin(api_client: Api) -> Api:
    return api_client.login(DEMO_ADMIN, DEMO_PASSWORD)


def test_admin_redirects_and_deactivates_a_user_who_then_cannot_sign_in(
    tab: Tab, open_tab: object, api_client: Api
) -> None:
    learner = api_client.signup("learner")
    email = learner.user["email"]
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin")
    expect(page).to_have_url(re.compile(r"/admin/dashboard$"))
    page.get_by_role("link", name="Users", exact=True).click()
    page.get_by_label("Search").fill(email)
    row = page.get_by_test_id("users-rows").locator("tr", has_text=email)
    expect(row).to_be_visible()
    expect(page.locator("#users-total")).to_have_text("1 user")

    row.get_by_role("button", name="Deactivate").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("can no longer log in")
    dialog.get_by_role("button", name="Deactivate").click()
    expect(row.get_by_text("Deactivated")).to_be_visible()
    expect(row.get_by_role("button", name="Reactivate")).to_be_visible()

    other: Tab = open_tab()  # type: ignore[operator]
    other.goto("/login")
    other.page.get_by_label("Email").fill(email)
    other.page.get_by_label("Password").fill(PASSWORD)
    other.page.get_by_role("button", name="Sign In").click()
    expect(other.page.locator("#login-form [data-form-error]")).to_contain_text("deactivated")
    expect(other.page).to_have_url(re.compile(r"/login$"))
    with pytest.raises(AssertionError, match="403"):
        api_client.login(email, PASSWORD)

    page.get_by_label("Status").select_option("false")  # the Deactivated filter finds them too
    expect(page.get_by_test_id("users-rows").locator("tr", has_text=email)).to_be_visible()
    assert tab.console_errors == []


def test_admin_changes_a_setting_and_it_persists_after_reload(tab: Tab, api_client: Api) -> None:
    admin = _admin(api_client)
    before = admin.call("GET", "/api/admin/settings")
    new_days = before["recording_retention_days"] + 7
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/settings")
    field = page.get_by_label("Recording retention (days)")
    expect(field).to_have_value(str(before["recording_retention_days"]))
    try:
        field.fill(str(new_days))
        page.get_by_role("button", name="Save Settings").click()
        expect(page.get_by_text("Settings saved.")).to_be_visible()
        page.reload()
        expect(page.get_by_label("Recording retention (days)")).to_have_value(str(new_days))
        expect(
            page.get_by_test_id("audit-rows").locator("tr", has_text="recording_retention_days").first
        ).to_be_visible()
        assert admin.call("GET", "/api/admin/settings")["recording_retention_days"] == new_days

        page.get_by_label("Platform fee (%)").fill("80")  # out of range: the API's field message
        page.get_by_role("button", name="Save Settings").click()
        expect(page.locator('[data-error-for="platform_fee_percent"]')).to_be_visible()
    finally:
        admin.call("POST", "/api/admin/settings", {"recording_retention_days": before["recording_retention_days"]})
    assert [e for e in tab.console_errors if "status of 400" not in e] == []


def test_admin_health_shows_live_figures(tab: Tab) -> None:
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/health")
    expect(page.get_by_test_id("health-status")).to_have_text("All systems OK")
    expect(page.locator('[data-figure="database"]')).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(page.locator('[data-sub="database"]')).to_contain_text("sqlite")
    expect(page.locator('[data-figure="version"]')).to_have_text(re.compile(r"^\d+\.\d+"))
    expect(page.locator('[data-figure="memory"]')).to_have_text(re.compile(r"MB|GB"))
    expect(page.locator('[data-figure="websockets"]')).to_have_text(re.compile(r"^\d+$"))
    first = page.locator("#health-updated").text_content()
    page.wait_for_timeout(1100)  # the "Updated" clock has one-second resolution
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#health-updated")).not_to_have_text(first or "")
    assert tab.console_errors == []


def test_admin_cancels_a_session_and_moderates_feedback(tab: Tab, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"])
    title = f"Admin cancels {uuid.uuid4().hex[:6]}"
    starts = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0).isoformat()
    s = mentor.call("POST", "/api/sessions", {"title": title, "domain": "Programming", "starts_at": starts})
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/sessions")
    page.get_by_label("Search").fill(title)
    expect(page.locator("#sessions-total")).to_have_text("1 session")  # the filtered list is in
    row = page.get_by_test_id("sessions-rows").locator("tr", has_text=title)
    row.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile(r"^Reason")).fill("Policy violation")
    dialog.get_by_role("button", name="Cancel session").click()
    expect(row.get_by_text("cancelled", exact=True)).to_be_visible()
    assert mentor.call("GET", f"/api/sessions/{s['id']}")["status"] == "cancelled"

    tab.goto("/admin/feedback")
    expect(page.locator("#feedback-total")).to_have_text(re.compile(r"^\d+ reviews?$"))
    row = page.get_by_test_id("feedback-rows").locator("tbody tr").first
    row_id = row.get_attribute("data-row-id")
    row.get_by_role("button", name="Hide").click()
    row = page.locator(f'tr[data-row-id="{row_id}"]')
    expect(row.get_by_text("Hidden", exact=True)).to_be_visible()
    row.get_by_role("button", name="Unhide").click()  # put it back for the other suites
    expect(page.locator(f'tr[data-row-id="{row_id}"]').get_by_text("Visible", exact=True)).to_be_visible()

    tab.goto("/admin/payments")
    expect(page.get_by_test_id("test-mode")).to_be_visible()
    first = page.get_by_test_id("payments-rows").locator("tbody tr").first
    expect(first.get_by_text("✓ balanced")).to_be_visible()
    assert tab.console_errors == []


def test_admin_ml_metrics_compares_models_and_trains_now(tab: Tab) -> None:
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/ml-metrics")
    expect(page.locator('[data-figure="version"]')).to_have_text(re.compile(r"^v\d+$|^none$"))
    page.get_by_role("button", name="Train now").click()
    expect(page.get_by_test_id("train-status")).to_contain_text(re.compile(r"Training…|succeeded"))
    expect(page.get_by_test_id("train-status")).to_contain_text("succeeded", timeout=90_000)
    expect(page.locator('[data-figure="version"]')).to_have_text(re.compile(r"^v\d+$"))
    table = page.get_by_test_id("offline-metrics")
    for method in ("hybrid (served)", "popularity", "random"):
        expect(table.get_by_text(method, exact=True)).to_be_visible()
    expect(page.locator("#history-chart svg[role='img']")).to_be_visible()
    expect(page.locator("#online-totals")).to_contain_text("CTR")
    tab.shot("admin-ml-metrics")
    # on a phone the charts' tables for screen readers must not widen the page
    page.set_viewport_size({"width": 390, "height": 844})
    tab.goto("/admin/ml-metrics")
    expect(page.locator("#history-chart svg[role='img']")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "ML metrics scroll sideways on a phone"
    assert tab.console_errors == []


def test_admin_recordings_tab_shows_real_state(tab: Tab, api_client: Api) -> None:
    """No fake rows: either the recordings API's list (or its empty state), or a clear notice that
    this server has no recordings API yet."""
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/recordings")
    has_api = "/api/recordings" in api_client.call("GET", "/api/openapi.json")["paths"]
    if has_api:
        expect(page.locator("#recordings-empty, [data-testid='recordings-rows'] tr").first).to_be_visible()
    else:
        expect(page.locator("#recordings-error")).to_contain_text("aren't available")
        expect(page.get_by_test_id("recordings-rows").locator("tr")).to_have_count(0)
    assert tab.console_errors == []


def test_admin_on_a_phone_scrolls_subtabs_and_shows_tables_as_cards(phone: Tab) -> None:
    phone.login(DEMO_ADMIN)
    page = phone.page
    for path in ADMIN_TABS:
        phone.goto(path)
        expect(page.locator("[aria-busy='true']")).to_have_count(0)
        page.wait_for_load_state("networkidle")  # charts drawn from what the page fetched
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width} px)"
    phone.goto("/admin/users")
    nav = page.get_by_role("navigation", name="Dashboard sections")
    assert nav.evaluate("el => el.scrollWidth > el.clientWidth"), "subtabs scroll sideways"
    expect(nav.get_by_role("link", name="Users")).to_have_attribute("aria-current", "page")
    rows = page.get_by_test_id("users-rows")
    expect(rows.locator("thead")).to_be_hidden()
    first = rows.locator("tbody tr").first
    assert first.evaluate("el => getComputedStyle(el).display") == "block"
    assert first.evaluate("el => el.getBoundingClientRect().right") <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways page scroll"
    phone.shot("admin-users-phone")
    assert phone.console_errors == [], phone.console_errors


def test_admin_users_shows_a_mentors_cancellation_record(tab: Tab, api_client: Api) -> None:
    """Issue 26: a mentor who cancels a class with a seat sold has it on their record."""
    mentor = api_client.signup("mentor", domains=["Programming"])
    learner = api_client.signup("learner")
    starts = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0).isoformat()
    s = mentor.call("POST", "/api/sessions", {"title": "Record me", "domain": "Programming", "starts_at": starts})
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    mentor.call("POST", f"/api/sessions/{s['id']}/cancel", {"reason": "Double-booked"})
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto("/admin/users")
    page.get_by_label("Search").fill(mentor.user["email"])
    expect(page.locator("#users-total")).to_have_text("1 user")
    record = page.get_by_test_id("users-rows").locator(f'[data-mentor-record="{mentor.user["id"]}"]')
    expect(record).to_contain_text("1 sold class")
    expect(record).to_contain_text("Cancelled: 1 (100%)")
    expect(record).to_contain_text("No-show: 0 (0%)")
    assert tab.console_errors == []
