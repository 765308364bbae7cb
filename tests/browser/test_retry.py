"""Pages ride out a short outage by themselves (issue 25): a 503 with Retry-After (a database
restarting, a worker being replaced) is retried, reads always, writes only when they carry an
Idempotency-Key (the server then makes them once); anything else shows its error at once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_LEARNER, Api, Tab
from tests.browser.test_learner import _mentor_session, _new_learner_tab

pytestmark = pytest.mark.browser


def _refuse_first(tab: Tab, pattern: str, times: int = 1) -> list[str]:
    """Answer the first ``times`` matching requests with 503 (as the server does while its
    database is away); let the rest through. Returns the log of what happened."""
    seen: list[str] = []

    def handle(route: Any) -> None:
        if len(seen) < times:
            seen.append("503")
            route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body='{"error": {"code": "unavailable", "message": "The database is not answering."}}',
            )
        else:
            seen.append("passed")
            route.continue_()

    tab.page.route(re.compile(pattern), handle)
    return seen


def test_a_list_that_meets_a_503_loads_after_retrying(tab: Tab) -> None:
    page = tab.page
    tab.login(DEMO_LEARNER)
    seen = _refuse_first(tab, r"/api/sessions\?", times=2)
    tab.goto("/learner/home")
    expect(page.get_by_test_id("session-list").locator("li").first).to_be_visible()
    assert seen[:3] == ["503", "503", "passed"], seen
    expect(page.get_by_role("alert")).to_have_count(0)


def test_a_booking_that_meets_a_503_is_made_once(tab: Tab, api_client: Api) -> None:
    learner = _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client)["session"]
    page = tab.page
    seen = _refuse_first(tab, r"/api/bookings/create$")
    tab.goto(f"/sessions/{s['id']}")
    page.get_by_role("button", name="Book Now").click()
    page.locator("#booking-modal").get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/learner/sessions"))
    expect(page.get_by_test_id("booking-list")).to_contain_text(s["title"])
    assert seen == ["503", "passed"], seen  # the same Idempotency-Key went again
    mine = [b for b in learner.call("GET", "/api/bookings")["items"] if b["session_id"] == s["id"]]
    assert len(mine) == 1, mine


def test_a_write_without_an_idempotency_key_is_not_repeated(tab: Tab) -> None:
    page = tab.page
    seen = _refuse_first(tab, r"/api/auth/login$", times=5)
    tab.goto("/login")
    page.get_by_label("Email").fill(DEMO_LEARNER)
    page.get_by_label("Password").fill("whatever-password")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("The database is not answering.")).to_be_visible()
    assert seen == ["503"], seen
