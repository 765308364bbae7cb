"""Issue 26, time zones in a real browser: a learner whose profile says Asia/Tokyo reads every
time in Tokyo time with the zone named, whatever the browser's own zone, and types the times
of a request in Tokyo time too."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api, Tab

pytestmark = pytest.mark.browser

TOKYO = ZoneInfo("Asia/Tokyo")


def _tokyo_learner(tab: Tab, api_client: Api) -> Api:
    learner = api_client.signup("learner", timezone="Asia/Tokyo")
    assert learner.user is not None
    tab.login(learner.user["email"], PASSWORD)
    return learner


def test_booked_class_shows_in_the_profile_zone_with_the_zone_named(tab: Tab, api_client: Api) -> None:
    # 01:30 UTC is 10:30 in Tokyo: the same digits in 12- and 24-hour locales
    day = (datetime.now(timezone.utc) + timedelta(days=3)).date()
    starts = datetime(day.year, day.month, day.day, 1, 30, tzinfo=timezone.utc)
    mentor = api_client.signup("mentor", domains=["Programming"])
    title = f"Tokyo {uuid.uuid4().hex[:6]}"
    s = mentor.call("POST", "/api/sessions", {"title": title, "domain": "Programming", "starts_at": starts.isoformat()})
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    learner = _tokyo_learner(tab, api_client)
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]})
    tab.goto("/learner/sessions")
    item = tab.page.locator("li", has_text=title).first
    shown = item.locator("time").first
    expect(shown).to_contain_text("10:30")
    expect(shown).to_contain_text(re.compile(r"GMT\+9|JST"))  # the zone is named
    expect(shown).to_contain_text(str(starts.astimezone(TOKYO).day))
    assert tab.console_errors == []


def test_request_times_are_typed_in_the_profile_zone(tab: Tab, api_client: Api) -> None:
    learner = _tokyo_learner(tab, api_client)
    page = tab.page
    tab.goto("/requests/new")
    expect(page.locator("[data-tz-label]").first).to_have_text("Asia/Tokyo")
    wall = (datetime.now(TOKYO) + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    page.get_by_label("Topic").fill("Zones")
    page.get_by_label("Domain").select_option("Programming")
    page.get_by_label("Preferred time 1").fill(wall.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Submit Request").click()
    expect(page.get_by_role("heading", name="Request submitted")).to_be_visible()
    mine = learner.call("GET", "/api/requests")["items"]
    sent = datetime.fromisoformat(mine[0]["preferred_times"][0].replace("Z", "+00:00"))
    assert sent == wall.astimezone(timezone.utc)
    assert tab.console_errors == []
