"""Across pages: phone bottom tabs vs desktop top bar, and the page sweep: every page (public,
learner, mentor and admin with each subtab, session detail and edit, request form, profile, the
room lobby) at 390 and 1280 px with no console errors and nothing loaded from anywhere but our
own server; a full-page screenshot of each lands in test-results/browser/<page>-<width>.png."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_ADMIN, DEMO_LEARNER, DEMO_MENTOR, PASSWORD, Api, Tab

pytestmark = pytest.mark.browser

PUBLIC = [
    "/",
    "/login",
    "/register",
    "/reset-password",
    "/reset-password?token=x",
    "/verify-email",
    "/about",
    "/contact",
    "/terms",
    "/privacy",
]
LEARNER = [
    "/learner/dashboard",
    "/learner/home",
    "/learner/sessions",
    "/learner/sessions?view=past",
    "/learner/requests",
    "/learner/notifications",
    "/messages",
    "/requests/new",
    "/profile",
]
MENTOR = [
    "/mentor/dashboard",
    "/mentor/sessions",
    "/mentor/sessions?view=draft",
    "/mentor/sessions?view=scheduled",
    "/mentor/sessions?view=past",
    "/mentor/sessions/new",
    "/mentor/availability",
    "/mentor/requests",
    "/mentor/earnings",
    "/mentor/analytics",
    "/mentor/profile",
    "/mentor/notifications",
    "/messages",
    "/profile",
]
ADMIN = [
    "/admin/dashboard",
    "/admin/users",
    "/admin/sessions",
    "/admin/requests",
    "/admin/payments",
    "/admin/feedback",
    "/admin/ml-metrics",
    "/admin/settings",
    "/admin/health",
    "/admin/recordings",
    "/admin/reports",
    "/admin/notifications",
    "/profile",
]


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
    for text in (
        "1:1 Sessions",
        "Real-Time Collaboration",
        "How It Works",
        "Sign Up",
        "Browse",
        "Connect",
        "Featured Mentors",
    ):
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


def _class_soon_with_a_draft(api_client: Api) -> tuple[Api, Api, int, int]:
    """A fresh mentor with a draft and a session starting in ~5 minutes booked by a fresh learner
    (whose room page is the lobby: the mentor hasn't opened it)."""
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    body = {
        "title": f"Sweep class {uuid.uuid4().hex[:6]}",
        "description": "For the page sweep.",
        "curriculum": ["Hi"],
        "domain": "Programming",
        "skills": ["Python"],
        "price_cents": 1000,
        "capacity": 3,
        "starts_at": starts.isoformat(),
        "duration_min": 30,
    }
    live = mentor.call("POST", "/api/sessions", body)
    mentor.call("POST", f"/api/sessions/{live['id']}/publish")
    draft = mentor.call(
        "POST", "/api/sessions", {**body, "title": "Sweep draft", "starts_at": (starts + timedelta(days=3)).isoformat()}
    )
    learner = api_client.signup("learner", interests=["Python"])
    learner.call(
        "POST", "/api/bookings/create", {"session_id": live["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    return mentor, learner, int(live["id"]), int(draft["id"])


def _settled(t: Tab, path: str) -> None:
    """Lists fill from the API: wait until none is busy (the lobby: until its people show)."""
    expect(t.page.locator('[aria-busy="true"]')).to_have_count(0)
    if path.startswith("/room/"):
        expect(t.page.locator("#room")).to_have_attribute("data-phase", "waiting")
        expect(t.page.get_by_role("list", name="Lobby").locator("li")).to_have_count(2)


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_every_page_loads_without_console_errors_or_external_requests(
    open_tab: object, api_client: Api, width: int, height: int
) -> None:
    sid = _first_session_id(api_client)
    mentor, learner, soon, draft = _class_soon_with_a_draft(api_client)
    assert mentor.user is not None and learner.user is not None
    cid = learner.call("POST", "/api/messages", {"to_user_id": mentor.user["id"], "body": "A question before class"})[
        "conversation_id"
    ]
    journeys: list[tuple[Any, str, list[str]]] = [
        (None, "anon", PUBLIC),
        (DEMO_LEARNER, "learner", LEARNER + [f"/sessions/{sid}"]),
        (DEMO_MENTOR, "mentor", MENTOR),
        (DEMO_ADMIN, "admin", ADMIN),
        ((mentor.user["email"], PASSWORD), "mentor", [f"/mentor/sessions/{draft}"]),
        (
            (learner.user["email"], PASSWORD),
            "learner",
            [f"/room/{soon}", f"/messages/{cid}", f"/mentors/{mentor.user['id']}"],
        ),
    ]
    for who, label, paths in journeys:
        t: Tab = open_tab(width, height)  # type: ignore[operator]
        if isinstance(who, tuple):
            t.login(*who)
        elif who:
            t.login(who)
        for path in paths:
            resp = t.goto(path)
            assert resp is not None and resp.status == 200, (path, resp and resp.status)
            _settled(t, path)
            slug = re.sub(r"/\d+", "/id", path).strip("/").replace("/", "_").replace("?", "_").replace("=", "-")
            name = slug if slug.startswith(label) else f"{label}-{slug or 'landing'}"
            t.shot(f"{name}-{width}")
        assert t.console_errors == [], t.console_errors
        outside = [u for u in t.requests if not _ours(u, t.base)]
        assert outside == [], outside
