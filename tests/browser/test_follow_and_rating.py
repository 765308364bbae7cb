"""In Chromium: a learner follows a mentor from the mentor's profile (the count moves and stays
after a reload) and unfollows; a learner who already rated a past class sees their rating on My
Sessions → Past and on the room's end screen, never a form that can only be refused."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Api, LiveServer, Tab, complete_session

pytestmark = pytest.mark.browser


def test_follow_a_mentor_from_the_profile(tab: Tab, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"])
    learner = api_client.signup("learner")
    assert mentor.user is not None and learner.user is not None
    tab.login(learner.user["email"], PASSWORD)
    tab.goto(f"/mentors/{mentor.user['id']}")
    page = tab.page
    button = page.get_by_test_id("follow-mentor")
    expect(page.get_by_test_id("followers")).to_have_text("0 followers")
    expect(button).to_have_text("Follow")
    button.click()
    expect(button).to_have_text("Following")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("followers")).to_have_text("1 follower")
    tab.goto(f"/mentors/{mentor.user['id']}")  # the server kept it
    expect(page.get_by_test_id("followers")).to_have_text("1 follower")
    expect(button).to_have_text("Following")
    button.click()
    expect(button).to_have_text("Follow")
    expect(page.get_by_test_id("followers")).to_have_text("0 followers")


def test_a_rated_class_shows_the_rating_not_a_form(tab: Tab, live_server: LiveServer, api_client: Api) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"])
    learner = api_client.signup("learner")
    assert mentor.user is not None and learner.user is not None
    title = f"Rated class {uuid.uuid4().hex[:6]}"
    starts = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    sess = mentor.call(
        "POST",
        "/api/sessions",
        {"title": title, "domain": "Programming", "capacity": 2, "starts_at": starts.isoformat(), "duration_min": 60},
    )
    mentor.call("POST", f"/api/sessions/{sess['id']}/publish")
    learner.call("POST", "/api/bookings/create", {"session_id": sess["id"]})
    complete_session(live_server, mentor, sess["id"])
    page = tab.page
    tab.login(learner.user["email"], PASSWORD)

    # Not rated yet: the form; rated: the stars given, and the form is gone for good.
    tab.goto("/learner/sessions?view=past")
    item = page.locator(f"[data-feedback-for='{sess['id']}']")
    expect(item.get_by_role("button", name="Submit Feedback")).to_be_visible()
    learner.call("POST", "/api/feedback/create", {"session_id": sess["id"], "rating": 4, "comment": "Clear"})
    tab.goto("/learner/sessions?view=past")
    expect(item.get_by_test_id("my-rating")).to_contain_text("4 of 5 stars")
    expect(item.get_by_role("button", name="Submit Feedback")).to_have_count(0)

    # The room's end screen says the same.
    tab.goto(f"/room/{sess['id']}")
    ended = page.locator("#screen-ended")
    expect(ended).to_be_visible()
    expect(ended.get_by_test_id("my-rating")).to_contain_text("4 of 5 stars")
    expect(page.locator("#feedback-form")).to_have_count(0)


def test_a_request_from_a_mentors_profile_says_whom_it_goes_to(tab: Tab, api_client: Api) -> None:
    """[Request a session] on a mentor's profile: the page names that mentor (only they see the
    request) and starts from their domain; without a mentor it goes to the domain's mentors."""
    mentor = api_client.signup("mentor", domains=["Design"])
    learner = api_client.signup("learner")
    assert mentor.user is not None and learner.user is not None
    tab.login(learner.user["email"], PASSWORD)
    tab.goto(f"/mentors/{mentor.user['id']}")
    page = tab.page
    page.get_by_role("link", name="Request a session").click()
    expect(page.get_by_test_id("request-heading")).to_have_text(f"Request a session with {mentor.user['full_name']}")
    expect(page.get_by_label("Domain")).to_have_value("Design")
    tab.goto("/requests/new")
    expect(page.get_by_test_id("request-heading")).to_have_text("Request a session")
    tab.goto(f"/requests/new?mentor={learner.user['id']}")  # not a mentor: the domain's mentors
    expect(page.get_by_test_id("request-heading")).to_have_text("Request a session")
