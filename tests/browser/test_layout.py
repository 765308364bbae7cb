"""Across pages: phone bottom tabs vs desktop top bar, no console errors at 390 and 1280 px,
nothing loaded from anywhere but our own server."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_ADMIN, DEMO_LEARNER, DEMO_MENTOR, Api, Tab

pytestmark = pytest.mark.browser

PUBLIC = ["/", "/login", "/register", "/reset-password", "/reset-password?token=x", "/verify-email",
          "/about", "/contact", "/terms", "/privacy"]
LEARNER = ["/learner/dashboard", "/learner/home", "/learner/sessions", "/learner/sessions?view=past",
           "/learner/requests", "/learner/notifications", "/requests/new", "/profile"]
MENTOR = ["/mentor/dashboard", "/mentor/notifications", "/profile"]
ADMIN = ["/admin/dashboard", "/admin/notifications", "/profile"]


def _ours(url: str, base: str) -> bool:
    if url.startswith(("data:", "blob:")):
        return True
    parts = urlsplit(url)
    return parts.hostname == "127.0.0.1" and f"{parts.scheme}://{parts.netloc}" in (base, base.replace("http", "ws"))


def _first_session_id(api_client: Api) -> int:
    return int(api_client.call("GET", "/api/sessions?page_size=1")["items"][0]["id"])


def test_phone_shows_bottom_tabs_and_desktop_the_top_bar(phone: Tab, tab: Tab) -> None:
    phone.login(DEMO_LEARNER)
    phone.goto("/learner/home")
    tabs = phone.page.get_by_test_id("bottom-tabs")
    expect(tabs).to_be_visible()
    for label in ("Home", "Sessions", "Requests", "Notifications", "Profile"):
        expect(tabs.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(phone.page.locator("#global-search")).to_be_hidden()
    tabs.get_by_role("link", name="Sessions", exact=True).click()
    expect(phone.page).to_have_url(re.compile(r"/learner/sessions$"))
    phone.shot("phone-my-sessions")

    tab.login(DEMO_LEARNER)
    tab.goto("/learner/home")
    expect(tab.page.get_by_test_id("bottom-tabs")).to_be_hidden()
    expect(tab.page.locator("#global-search")).to_be_visible()
    expect(tab.page.get_by_test_id("bell")).to_be_visible()


def test_landing_has_the_labels_and_a_swipeable_mentor_carousel(phone: Tab) -> None:
    page = phone.page
    phone.goto("/")
    expect(page.get_by_role("heading", name="Learn from Experts Live")).to_be_visible()
    for text in ("1:1 Sessions", "Real-Time Collaboration", "How It Works", "Sign Up", "Browse", "Connect",
                 "Featured Mentors"):
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    carousel = page.get_by_test_id("mentor-carousel")
    expect(carousel.locator("li").first).to_be_visible()
    assert carousel.locator("li").count() >= 3
    snap = carousel.evaluate("el => getComputedStyle(el).scrollSnapType")
    assert "x" in snap and "mandatory" in snap
    assert carousel.evaluate("el => el.scrollWidth > el.clientWidth")
    for name in ("About", "Contact", "Terms", "Privacy"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.get_by_role("link", name="Privacy", exact=True).click()
    expect(page.get_by_role("heading", name="Privacy Policy")).to_be_visible()
    phone.goto("/")
    page.locator("main").get_by_role("link", name="Login", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_every_page_loads_without_console_errors_or_external_requests(
        open_tab: object, api_client: Api, width: int, height: int) -> None:
    sid = _first_session_id(api_client)
    journeys = [(None, PUBLIC), (DEMO_LEARNER, LEARNER + [f"/sessions/{sid}"]), (DEMO_MENTOR, MENTOR),
                (DEMO_ADMIN, ADMIN)]
    for who, paths in journeys:
        t: Tab = open_tab(width, height)  # type: ignore[operator]
        if who:
            t.login(who)
        for path in paths:
            resp = t.goto(path)
            assert resp is not None and resp.status == 200, (path, resp and resp.status)
            # Lists fill from the API: wait until none is busy before the screenshot.
            expect(t.page.locator('[aria-busy="true"]')).to_have_count(0)
            name = (who or "anon").split("@")[0] + path.replace("/", "_").replace("?", "_")
            t.shot(f"{width}-{name}")
        assert t.console_errors == [], t.console_errors
        outside = [u for u in t.requests if not _ours(u, t.base)]
        assert outside == [], outside
