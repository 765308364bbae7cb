"""Scheduling journey (issue 26): a mentor in Berlin sets weekly availability on a phone-sized
page; a learner in Tokyo opens the mentor's page, sees the free slots on their own clock with
both zones named, and books one; the slot is gone and the class is in their sessions."""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api, LiveServer, Tab

pytestmark = pytest.mark.browser


@pytest.fixture
def zoned_tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """Factory: a tab whose browser clock is in ``zone`` (the way a person abroad opens the site)."""
    made: list[Tab] = []

    def make(zone: str, width: int, height: int) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height}, timezone_id=zone, locale="en-GB")
        page = context.new_page()
        tab = Tab(context, page, live_server.url, [], [])
        page.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: tab.console_errors.append(str(e)))
        page.set_default_timeout(15_000)
        made.append(tab)
        return tab

    yield make
    for t in made:
        t.context.close()


def _no_sideways_scroll(tab: Tab) -> None:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= tab.page.viewport_size["width"], f"the page scrolls sideways: {width}px"


def test_mentor_sets_hours_on_a_phone_and_a_learner_abroad_books_a_slot(zoned_tab: Any, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"], timezone="Europe/Berlin")
    learner = api_client.signup("learner", interests=["Python"], timezone="Asia/Tokyo")

    # The mentor, on a 390 px phone in Berlin: Monday to Sunday 09:00-12:00, 45-minute slots at 25 USD.
    phone = zoned_tab("Europe/Berlin", 390, 844)
    phone.login(mentor.user["email"], PASSWORD)  # type: ignore[index]
    phone.goto("/mentor/availability")
    page = phone.page
    expect(page.get_by_test_id("week-grid")).to_be_visible()
    page.get_by_label("Your time zone").select_option("Europe/Berlin")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_role("button", name=f"Add hours on {day}").click()
    monday = page.locator('[data-day="0"]')
    expect(monday.get_by_label("From")).to_have_value("09:00")
    expect(monday.get_by_label("Until")).to_have_value("12:00")
    page.get_by_label("Slot length").select_option("45")
    page.get_by_label("Price per slot").fill("25")
    page.get_by_label("Break between classes (min)").fill("15")
    _no_sideways_scroll(phone)
    page.get_by_role("button", name="Save availability").click()
    expect(page.get_by_text("Availability saved")).to_be_visible()
    expect(page.get_by_test_id("slot-preview").locator("li").first).to_contain_text("$25.00")
    _no_sideways_scroll(phone)
    phone.shot("scheduling-1-mentor-availability-phone")
    rules = mentor.call("GET", "/api/mentors/me/availability")
    assert rules["time_zone"] == "Europe/Berlin" and rules["slot_minutes"] == 45 and rules["price_cents"] == 2500
    assert {(r["weekday"], r["start"], r["end"]) for r in rules["weekly"]} == {(d, "09:00", "12:00") for d in range(7)}
    assert not phone.console_errors, phone.console_errors
    wide = zoned_tab("Europe/Berlin", 1280, 900)
    wide.login(mentor.user["email"], PASSWORD)  # type: ignore[index]
    wide.goto("/mentor/availability")
    expect(wide.page.locator('[data-day="6"] [data-range]')).to_have_count(1)
    _no_sideways_scroll(wide)
    wide.shot("scheduling-1b-mentor-availability-desktop")

    # The learner, in Tokyo on a desktop: slots on a Tokyo clock, Berlin's beside it.
    now = datetime.now(UTC)
    q = f"from={(now).isoformat().replace('+00:00', 'Z')}&to={(now + timedelta(days=28)).isoformat().replace('+00:00', 'Z')}"
    first = mentor.call("GET", f"/api/mentors/{mentor.user['id']}/slots?{q}")["items"][0]  # type: ignore[index]
    start = datetime.fromisoformat(first["starts_at"])
    tokyo, berlin = start.astimezone(ZoneInfo("Asia/Tokyo")), start.astimezone(ZoneInfo("Europe/Berlin"))
    # inside the mentor's Berlin morning: 09:00 itself, unless the 12 h notice has taken it
    # (after 21:00 in Berlin the first slot of the next morning starts later)
    assert "09:00" <= berlin.strftime("%H:%M") < "12:00", berlin

    desk = zoned_tab("Asia/Tokyo", 1280, 900)
    desk.login(learner.user["email"], PASSWORD)  # type: ignore[index]
    desk.goto(f"/mentors/{mentor.user['id']}")  # type: ignore[index]
    page = desk.page
    expect(page.get_by_role("heading", name="Book a 1:1")).to_be_visible()
    expect(page.get_by_test_id("slot-zones")).to_contain_text("Asia/Tokyo")
    expect(page.get_by_test_id("slot-zones")).to_contain_text("Europe/Berlin")
    slot = page.locator(f'[data-slot="{first["starts_at"]}"]')
    expect(slot).to_contain_text(tokyo.strftime("%H:%M"))
    expect(slot).to_contain_text(f"{berlin:%H:%M}")
    desk.shot("scheduling-2-learner-slot-picker-tokyo")
    slot.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("(Asia/Tokyo)")
    expect(dialog).to_contain_text("(Europe/Berlin)")
    expect(dialog).to_contain_text("$25.00")
    expect(dialog.get_by_test_id("cancellation-policy")).to_contain_text(
        re.compile(r"more than \d+ hours before the start")
    )
    desk.shot("scheduling-3-learner-confirm")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/learner/sessions\?booked=\d+$"))
    expect(page.get_by_test_id("booked-notice")).to_be_visible()
    booked = learner.call("GET", "/api/bookings?when=upcoming")["items"]
    assert [b["session"]["starts_at"] for b in booked] == [first["starts_at"]]
    assert booked[0]["price_cents"] == 2500 and booked[0]["session"]["duration_min"] == 45
    expect(page.get_by_text(booked[0]["session"]["title"]).first).to_be_visible()
    desk.shot("scheduling-4-learner-sessions")
    again = mentor.call("GET", f"/api/mentors/{mentor.user['id']}/slots?{q}")["items"]  # type: ignore[index]
    assert first["starts_at"] not in [s["starts_at"] for s in again]

    # The mentor, on the phone, proposes the next free time; the class keeps its time meanwhile.
    sid = booked[0]["session_id"]
    target = again[0]["starts_at"]
    phone.goto(f"/sessions/{sid}")
    panel = phone.page.get_by_test_id("reschedule")
    panel.get_by_role("button", name="Propose a new time").click()
    panel.locator(f'[data-new-time="{target}"]').click()
    expect(panel).to_contain_text("Waiting for an answer")
    _no_sideways_scroll(phone)
    phone.shot("scheduling-5-mentor-proposes-new-time-phone")
    assert learner.call("GET", f"/api/sessions/{sid}")["starts_at"] == first["starts_at"]

    # The learner accepts; the class moves, and both calendar feeds show the new time.
    desk.goto(f"/sessions/{sid}")
    panel = page.get_by_test_id("reschedule")
    expect(panel).to_contain_text("proposes moving this class")
    desk.shot("scheduling-6-learner-sees-proposal")
    panel.get_by_role("button", name="Accept new time").click()
    expect(page.get_by_text("The class moved to the new time")).to_be_visible()
    assert learner.call("GET", f"/api/sessions/{sid}")["starts_at"] == target
    new_start = datetime.fromisoformat(target)
    learner_feed = _feed_events(learner.call("GET", "/api/calendar/feed")["url"])
    mentor_feed = _feed_events(mentor.call("GET", "/api/calendar/feed")["url"])
    mine = learner_feed[f"booking-{booked[0]['id']}-session-{sid}@peerlearn"]
    theirs = mentor_feed[f"session-{sid}@peerlearn"]
    for ev in (mine, theirs):
        assert ev.decoded("DTSTART") == new_start and int(ev["SEQUENCE"]) == 1 and str(ev["STATUS"]) == "CONFIRMED"
    page.wait_for_load_state()
    expect(page.locator('[data-field="starts_at"]')).to_contain_text(
        new_start.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    )
    desk.shot("scheduling-7-learner-class-moved")
    assert not desk.console_errors, desk.console_errors
    assert not phone.console_errors, phone.console_errors


def _feed_events(url: str) -> dict[str, Any]:
    import urllib.request

    import icalendar

    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.headers.get_content_type() == "text/calendar"
        cal = icalendar.Calendar.from_ical(resp.read())
    return {str(ev["UID"]): ev for ev in cal.walk("VEVENT")}


def test_profile_calendar_feed_and_reminder_choices(zoned_tab: Any, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], timezone="Europe/Berlin")
    learner = api_client.signup("learner", timezone="America/New_York")
    mentor.call(
        "PUT",
        "/api/mentors/me/availability",
        {
            "time_zone": "Europe/Berlin",
            "weekly": [{"weekday": d, "start": "10:00", "end": "11:00"} for d in range(7)],
            "slot_minutes": 60,
            "price_cents": 0,
            "currency": "USD",
        },
    )
    now = datetime.now(UTC)
    q = f"from={now.isoformat().replace('+00:00', 'Z')}&to={(now + timedelta(days=14)).isoformat().replace('+00:00', 'Z')}"
    slot = mentor.call("GET", f"/api/mentors/{mentor.user['id']}/slots?{q}")["items"][0]  # type: ignore[index]
    booking = learner.call(
        "POST", "/api/bookings/slot", {"mentor_id": mentor.user["id"], "starts_at": slot["starts_at"]}
    )  # type: ignore[index]

    # A visitor sees the free times too; picking one asks them to sign in first.
    visitor = zoned_tab("America/New_York", 390, 844)
    visitor.goto(f"/mentors/{mentor.user['id']}")  # type: ignore[index]
    expect(visitor.page.get_by_test_id("slot-zones")).to_contain_text("America/New_York")
    visitor.page.locator("[data-slot]").first.click()
    expect(visitor.page).to_have_url(re.compile(r"/login\?next="))

    phone = zoned_tab("America/New_York", 390, 844)
    phone.login(learner.user["email"], PASSWORD)  # type: ignore[index]
    phone.goto("/profile")
    page = phone.page
    url_box = page.get_by_test_id("calendar-url")
    expect(url_box).to_have_value(re.compile(r"/api/calendar/[\w-]+\.ics$"))
    old_url = url_box.input_value()
    events = _feed_events(old_url)
    uid = f"booking-{booking['id']}-session-{booking['session_id']}@peerlearn"
    assert events[uid].decoded("DTSTART") == datetime.fromisoformat(slot["starts_at"])
    mentor_feed = _feed_events(mentor.call("GET", "/api/calendar/feed")["url"])
    assert mentor_feed[f"session-{booking['session_id']}@peerlearn"].decoded("DTSTART") == datetime.fromisoformat(
        slot["starts_at"]
    )
    _no_sideways_scroll(phone)
    phone.shot("scheduling-8-profile-calendar-phone")

    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="New address").click()
    expect(url_box).not_to_have_value(old_url)
    try:
        _feed_events(old_url)
        raise AssertionError("the old address still answers")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    assert uid in _feed_events(url_box.input_value())

    page.get_by_label("E-mail me a reminder 24 hours before each class").uncheck()
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_text(re.compile("saved", re.I)).first).to_be_visible()
    prefs = learner.call("GET", "/api/users/me")["preferences"]
    assert prefs["remind_email_24h"] is False and prefs["remind_email_1h"] is True
    assert not phone.console_errors, phone.console_errors
