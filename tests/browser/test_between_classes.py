"""The journey of issue 27, in Chromium: a learner messages a mentor from the mentor's profile
on a phone, the mentor answers live, the learner books the 1:1 (whose page says attendees may
replay it), the mentor attaches the slides as a PDF, the learner finds them on the session
page, the class takes place and is recorded, and the learner replays a minute of it from
My Sessions → Past on the phone, seeking without downloading first."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from api.context import Context
from api.keys import RECORDINGS
from api.models import Recording, RecordingStatus
from api.services import recordings as svc
from tests.browser.conftest import PASSWORD, Api, LiveServer, Tab, complete_session
from tests.sfu.test_recorder import audio_packets, video_packets, write_dump

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def record_class(live_server: LiveServer, session_id: int, user_id: int, seconds: float) -> int:
    """The class's recording as the SFU leaves it (RTP dumps of the mentor's VP8 + Opus),
    finalized into WebM by the recording service."""

    async def make(app: Any) -> int:
        ctx = Context.of(app)
        async with ctx.db.write() as s:
            rec = Recording(session_id=session_id, status=RecordingStatus.processing, participants=[], files=[])
            s.add(rec)
            await s.flush()
            rid = int(rec.id)
        directory = svc.recording_dir(ctx, rid)
        directory.mkdir(parents=True)
        video = [(a, d) for a, d, _ in video_packets(seconds, fps=10)]
        write_dump(directory / "v1.rtpd", "video", video, user=str(user_id))
        write_dump(directory / "a1.rtpd", "audio", audio_packets(seconds), user=str(user_id))
        await app[RECORDINGS].finalize(rid)
        return rid

    return int(live_server.run(make, timeout=300))


def test_message_book_materials_class_and_replay_on_a_phone(
    phone: Tab, open_tab: Any, live_server: LiveServer, api_client: Api
) -> None:
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    learner = api_client.signup("learner", interests=["Python"])
    assert mentor.user is not None and learner.user is not None
    title = f"Asyncio 1:1 {uuid.uuid4().hex[:6]}"
    starts = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
    sess = mentor.call(
        "POST",
        "/api/sessions",
        {"title": title, "domain": "Programming", "capacity": 1, "starts_at": starts.isoformat(), "duration_min": 60},
    )
    mentor.call("POST", f"/api/sessions/{sess['id']}/publish")
    sid = sess["id"]

    # The mentor is on their inbox; the learner writes from the mentor's profile on a phone.
    mt: Tab = open_tab()
    mt.login(mentor.user["email"], PASSWORD)
    mt.goto("/messages")
    expect(mt.page.locator("body[data-realtime=open]")).to_be_attached()
    page = phone.page
    phone.login(learner.user["email"], PASSWORD)
    phone.goto(f"/mentors/{mentor.user['id']}")
    expect(page.get_by_test_id("mentor-profile")).to_contain_text(title)
    page.get_by_test_id("message-mentor").click()
    page.get_by_label("Message to Test Mentor").fill("Will the 1:1 cover asyncio.TaskGroup?")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/messages/\d+$"))

    # The mentor answers live.
    expect(mt.page.get_by_test_id("conversation-list")).to_contain_text("asyncio.TaskGroup")
    mt.page.get_by_test_id("conversation-list").get_by_role("link").first.click()
    mt.page.get_by_label("Message to Test Learner").fill("Yes, and cancellation. I'll send slides.")
    mt.page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("message-list")).to_contain_text("I'll send slides.")

    # The learner books; the page said replays are shared before booking.
    phone.goto(f"/sessions/{sid}")
    expect(page.get_by_test_id("replay-policy")).to_have_text("Attendees can replay the recording")
    page.get_by_role("button", name="Book Now").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(re.compile(r"/learner/sessions"))

    # The mentor attaches the slides; the learner finds them on the session page.
    mt.goto(f"/sessions/{sid}")
    expect(mt.page.get_by_test_id("booked-learners")).to_contain_text("Test Learner")
    materials = mt.page.get_by_test_id("materials")
    materials.locator("input[type=file]").set_input_files(
        {"name": "TaskGroup slides.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    expect(materials.get_by_test_id("materials-list")).to_contain_text("TaskGroup slides.pdf")
    mt.shot("journey-session-materials-1280")
    phone.goto(f"/sessions/{sid}")
    link = page.get_by_test_id("materials").get_by_role("link", name="TaskGroup slides.pdf")
    expect(link).to_be_visible()
    got = page.request.get(link.get_attribute("href") or "")
    assert got.status == 200 and got.headers["content-type"] == "application/pdf" and got.body() == PDF

    # The class takes place (both in the room, then the mentor ends it) and was recorded.
    complete_session(live_server, mentor, sid)
    record_class(live_server, sid, int(mentor.user["id"]), seconds=62)

    # My Sessions → Past on the phone: [Watch recording], then a minute in, without downloading first.
    phone.goto("/learner/sessions?view=past")
    card = page.locator(f'li[data-session-id="{sid}"]')
    card.get_by_test_id("replays").get_by_role("button").click()
    video = page.get_by_test_id("replay-video")
    expect(video).to_be_visible()
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=replay-video]'); return v && v.duration >= 60; }",
        timeout=30_000,
    )
    video.evaluate("v => { v.currentTime = 60; }")
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=replay-video]'); return !v.seeking && v.currentTime >= 59 && v.readyState >= 2; }",
        timeout=30_000,
    )
    phone.shot("journey-replay-390")
    assert phone.console_errors == [] and mt.console_errors == []
