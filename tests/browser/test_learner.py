"""Learner journeys in a real browser: browse filters, booking from the detail modal,
live seat counts, readiness (I'm Ready → Waiting for Mentor… → Join Class), requests."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_LEARNER, DEMO_MENTOR, PASSWORD, Api, Tab

pytestmark = pytest.mark.browser

# The page's socket confirmed its subscription to session ``id`` (realtime.js keeps the list on <body>).
SUBSCRIBED = "(id) => (document.body.dataset.subscribed || '').split(' ').includes(String(id))"


def _new_learner_tab(tab: Tab, api_client: Api) -> Api:
    """A fresh learner (no bookings yet), signed in inside ``tab``."""
    learner = api_client.signup("learner", interests=["Python"])
    assert learner.user is not None
    tab.login(learner.user["email"], PASSWORD)
    return learner


def _mentor_session(
    api_client: Api, *, capacity: int = 5, starts_in: timedelta = timedelta(days=3), price_cents: int = 1500
) -> dict[str, Any]:
    """A published session of a fresh mentor."""
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    starts = (datetime.now(timezone.utc) + starts_in).replace(microsecond=0)
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": f"Browser test {uuid.uuid4().hex[:6]}",
            "description": "Testing in a real browser.",
            "curriculum": ["Selectors", "Assertions"],
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": price_cents,
            "capacity": capacity,
            "starts_at": starts.isoformat(),
            "duration_min": 45,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    return {"session": s, "mentor": mentor}


def test_browse_filters_update_the_list(tab: Tab) -> None:
    page = tab.page
    tab.login(DEMO_LEARNER)
    tab.goto("/learner/home")
    cards = page.get_by_test_id("session-list").locator("li")
    expect(cards.first).to_be_visible()
    domains = set(cards.locator(".badge").all_inner_texts())
    assert len(domains) > 1, domains

    page.get_by_label("Domain").select_option("Design")
    expect(page).to_have_url(re.compile(r"domain=Design"))
    expect(cards.locator(".badge").filter(has_not_text="Design")).to_have_count(0)
    expect(cards.first).to_be_visible()

    page.get_by_label("Price").select_option("free")
    expect(cards.filter(has_not_text="Free")).to_have_count(0)
    expect(cards.first).to_be_visible()
    page.get_by_label("Price").select_option("")
    page.get_by_label("Domain").select_option("")
    page.get_by_label("Search", exact=True).fill("zzz-no-such-session")
    expect(page.locator("#browse-empty")).to_be_visible()
    expect(cards).to_have_count(0)
    tab.shot("browse-filters")


def test_book_from_detail_modal_lands_on_my_sessions(tab: Tab, api_client: Api) -> None:
    page = tab.page
    _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client)["session"]
    tab.goto(f"/sessions/{s['id']}")
    expect(page.get_by_role("heading", name=s["title"])).to_be_visible()
    expect(page.get_by_test_id("seats-left")).to_have_text("5 seats left")
    page.get_by_role("tab", name="Curriculum").click()
    expect(page.get_by_text("Assertions")).to_be_visible()
    page.get_by_role("tab", name="Reviews").click()
    expect(page.locator("#reviews-summary")).to_have_text("No reviews yet for this session.")

    page.get_by_role("button", name="Book Now").click()
    modal = page.locator("#booking-modal")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("$15.00")
    modal.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/learner/sessions"))
    expect(page.get_by_test_id("booking-list")).to_contain_text(s["title"])

    # Back on the detail page: booked, no second [Book Now].
    tab.goto(f"/sessions/{s['id']}")
    expect(page.locator("#status-note")).to_have_text("You're booked on this session.")
    expect(page.get_by_role("button", name="Book Now")).to_be_hidden()
    expect(page.get_by_test_id("seats-left")).to_have_text("4 seats left")


def test_full_and_past_sessions_say_so(tab: Tab, api_client: Api) -> None:
    page = tab.page
    _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client, capacity=1)["session"]
    other = api_client.signup("learner")
    other.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    tab.goto(f"/sessions/{s['id']}")
    expect(page.locator("#status-note")).to_have_text("This session is full.")
    expect(page.get_by_role("button", name="Book Now")).to_be_hidden()


def test_seat_count_changes_live_when_another_learner_books(tab: Tab, api_client: Api) -> None:
    page = tab.page
    _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client, capacity=3)["session"]
    tab.goto(f"/sessions/{s['id']}")
    seats = page.get_by_test_id("seats-left")
    expect(seats).to_have_text("3 seats left")
    other = api_client.signup("learner")
    _book_when_subscribed(page, other, s["id"])
    expect(seats).to_have_text("2 seats left")

    # The Browse card follows too.
    tab.goto(f"/learner/home?q={s['title']}")
    card_seats = page.get_by_test_id("session-list").locator(f'[data-seats-for="{s["id"]}"]')
    expect(card_seats).to_have_text("2 seats left")
    third = api_client.signup("learner")
    _book_when_subscribed(page, third, s["id"])
    expect(card_seats).to_have_text("1 seat left")


def _book_when_subscribed(page: Any, learner: Api, session_id: int) -> None:
    """Book once the page's socket has confirmed its subscription to the session channel."""
    page.wait_for_function(SUBSCRIBED, arg=session_id, timeout=15_000)
    learner.call(
        "POST", "/api/bookings/create", {"session_id": session_id}, headers={"Idempotency-Key": uuid.uuid4().hex}
    )


def test_ready_waiting_for_mentor_then_join_class(tab: Tab, api_client: Api) -> None:
    page = tab.page
    learner = _new_learner_tab(tab, api_client)
    made = _mentor_session(api_client, starts_in=timedelta(minutes=5))
    s, mentor = made["session"], made["mentor"]
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    tab.goto("/learner/sessions")
    row = page.locator(f'li[data-session-id="{s["id"]}"]')
    row.get_by_role("button", name="I'm Ready").click()
    expect(row.get_by_text("Waiting for Mentor…")).to_be_visible()
    page.wait_for_function(SUBSCRIBED, arg=s["id"], timeout=15_000)
    mentor.call("POST", f"/api/rooms/{s['id']}/ready", {"ready": True})
    join = row.get_by_role("link", name="Join Class")
    expect(join).to_be_visible()
    expect(join).to_have_attribute("href", f"/room/{s['id']}")


def _fill_request(page: Any, topic: str) -> None:
    page.get_by_label("Topic").fill(topic)
    page.get_by_label("Domain").select_option("Programming")
    page.get_by_label("Skills").fill("asyncio, aiohttp")
    page.get_by_label("Duration").select_option("45")
    when = datetime.now() + timedelta(days=2)
    page.get_by_label("Preferred time 1").fill(when.strftime("%Y-%m-%dT%H:00"))
    page.get_by_label("Description").fill("I want feedback on my event loop usage.")
    page.get_by_role("button", name="Submit Request").click()


def test_request_modal_then_cancel_with_confirmation(tab: Tab, api_client: Api) -> None:
    page = tab.page
    _new_learner_tab(tab, api_client)
    tab.goto("/learner/requests")
    page.get_by_role("link", name="New Request").click()
    modal = page.locator("#request-modal")
    expect(modal).to_be_visible()
    _fill_request(modal, "Async Python code review")
    expect(modal.get_by_role("heading", name="Request submitted")).to_be_visible()
    modal.get_by_role("button", name="Done").click()

    item = page.get_by_test_id("request-list").locator("li").filter(has_text="Async Python code review")
    expect(item).to_contain_text("Open")
    item.get_by_role("button", name="Cancel").click()
    dialog = page.locator("#cancel-modal")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel request").click()
    expect(item).to_contain_text("Cancelled")


def test_request_form_page(tab: Tab, api_client: Api) -> None:
    page = tab.page
    _new_learner_tab(tab, api_client)
    tab.goto("/requests/new")
    page.get_by_role("button", name="Submit Request").click()
    expect(page.locator('[data-error-for="topic"]')).to_have_text("Say what you want to learn.")
    _fill_request(page, "SQL window functions")
    expect(page.get_by_role("heading", name="Request submitted")).to_be_visible()
    tab.goto("/learner/requests")
    expect(page.get_by_test_id("request-list")).to_contain_text("SQL window functions")


def test_mark_all_read_clears_the_badge(tab: Tab, api_client: Api) -> None:
    page = tab.page
    learner = _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client)["session"]
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})  # "booking made" notification
    tab.goto("/learner/notifications")
    badge = page.locator("header [data-unread-badge]")
    expect(badge).to_be_visible()
    page.get_by_role("button", name="Mark All Read").click()
    expect(badge).to_be_hidden()
    expect(page.locator("[data-unread-text]")).to_have_text("0")


def test_unread_badge_updates_live(tab: Tab, api_client: Api) -> None:
    page = tab.page
    learner = _new_learner_tab(tab, api_client)
    s = _mentor_session(api_client)["session"]
    tab.goto("/profile")
    badge = page.locator("header [data-unread-badge]")
    expect(badge).to_be_hidden()
    page.wait_for_function("() => document.body.dataset.realtime === 'open'", timeout=15_000)
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    expect(badge).to_be_visible()
    expect(badge).to_have_text(re.compile(r"^[1-9]"))


def test_demo_learner_recommendations_book_now_opens_the_modal(tab: Tab) -> None:
    page = tab.page
    tab.login(DEMO_LEARNER)
    tab.goto("/learner/home")
    recs = page.get_by_test_id("recommendations")
    expect(recs.locator("li").first).to_be_visible()
    recs.locator("li").first.get_by_role("link", name="Book Now").click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+\?book=1"))
    expect(page.locator("#booking-modal")).to_be_visible()
    page.locator("#booking-modal").get_by_role("button", name="Cancel").click()
    expect(page.locator("#booking-modal")).to_be_hidden()


def test_demo_mentor_cannot_book(tab: Tab, api_client: Api) -> None:
    s = _mentor_session(api_client)["session"]
    tab.login(DEMO_MENTOR)
    tab.goto(f"/sessions/{s['id']}")
    expect(tab.page.locator("#status-note")).to_have_text("Only learner accounts can book sessions.")
    expect(tab.page.get_by_role("button", name="Book Now")).to_be_hidden()
