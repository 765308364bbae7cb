"""Recordings in the UI against the real API: a finalized recording (RTP dumps muxed into WebM by
the recording service, as after a real room) is listed in the admin Recordings tab, plays in the
page's <video> (HTTP Range), exports to MP4 with a progress bar and a download link, shows under
its session in the mentor's Past list and the admin Sessions tab, and [Delete] removes it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from api.context import Context
from api.keys import RECORDINGS
from api.models import Recording, RecordingStatus
from api.services import recordings as svc
from tests.browser.conftest import DEMO_ADMIN, PASSWORD, Api, LiveServer, Tab, complete_session
from tests.sfu.test_recorder import audio_packets, video_packets, write_dump

pytestmark = pytest.mark.browser

VIDEO_PLAYABLE = (
    """() => { const v = document.querySelector('%s'); return v && v.readyState >= 1 && v.duration > 0; }"""
)


def completed_session(live_server: LiveServer, api_client: Api, title: str) -> tuple[dict[str, Any], Api, Api]:
    """A fresh mentor's session, booked by a fresh learner, that took place: opened (the mentor
    entering the room), then ended."""
    mentor = api_client.signup("mentor", domains=["Programming"], skills=["Python"])
    starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    s = mentor.call(
        "POST",
        "/api/sessions",
        {
            "title": title,
            "description": "A class that took place.",
            "curriculum": ["Intro"],
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": 2000,
            "capacity": 5,
            "starts_at": starts.isoformat(),
            "duration_min": 30,
        },
    )
    mentor.call("POST", f"/api/sessions/{s['id']}/publish")
    learner = api_client.signup("learner", interests=["Python"])
    learner.call("POST", "/api/bookings/create", {"session_id": s["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex})

    complete_session(live_server, mentor, s["id"])
    assert mentor.call("GET", f"/api/sessions/{s['id']}")["status"] == "completed"
    return s, mentor, learner


def make_recording(live_server: LiveServer, session_id: int, seconds: float = 2.0) -> int:
    """A recording as the SFU leaves it (RTP dumps of one participant's VP8 + Opus), finalized
    into WebM by the recording service."""

    async def make(app: Any) -> int:
        ctx = Context.of(app)
        async with ctx.db.write() as s:
            rec = Recording(
                session_id=session_id,
                status=RecordingStatus.processing,
                participants=[],
                files=[],
                bytes=0,
                duration_ms=0,
                error="",
            )
            s.add(rec)
            await s.flush()
            rid = int(rec.id)
        directory = svc.recording_dir(ctx, rid)
        directory.mkdir(parents=True)
        write_dump(directory / "v1.rtpd", "video", [(a, d) for a, d, _ in video_packets(seconds)], user="1")
        write_dump(directory / "a1.rtpd", "audio", audio_packets(seconds), user="1")
        await app[RECORDINGS].finalize(rid)
        return rid

    rid = int(live_server.run(make))
    return rid


def test_recordings_list_play_export_per_session_and_delete(
    tab: Tab, open_tab: Any, live_server: LiveServer, api_client: Api
) -> None:
    title = f"Recorded class {uuid.uuid4().hex[:6]}"
    s, mentor, _learner = completed_session(live_server, api_client, title)
    rid = make_recording(live_server, s["id"])
    assert mentor.user is not None

    # admin → Recordings, filtered to this session (?session_id= fills the filter)
    tab.login(DEMO_ADMIN)
    page = tab.page
    tab.goto(f"/admin/recordings?session_id={s['id']}")
    rows = page.get_by_test_id("recordings-rows").locator("tbody tr")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text(title)
    expect(row).to_contain_text("ready")
    expect(page.locator("#recordings-total")).to_have_text("1 recording")

    # play in the page: the <video> loads the WebM through Range requests
    row.get_by_role("button", name="Play").click()
    expect(page.locator("#player")).to_be_visible()
    page.wait_for_function(VIDEO_PLAYABLE % "#player-video", timeout=20_000)
    assert row.get_by_role("link", name="Download").get_attribute("href") == f"/api/recordings/{rid}/download?file=0"
    ranged = page.request.get(f"/api/recordings/{rid}/download?file=0", headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body()) == 100

    # [Export MP4] → progress while the background job runs → [Download MP4]
    row.get_by_role("button", name="Export MP4").click()
    expect(row.locator("[data-export-for]")).not_to_have_attribute("data-export-status", "none")
    mp4 = row.get_by_role("link", name="Download MP4")
    expect(mp4).to_be_visible(timeout=120_000)
    assert mp4.get_attribute("href") == f"/api/recordings/{rid}/download?file=export"
    got = page.request.get(f"/api/recordings/{rid}/download?file=export")
    assert got.status == 200 and got.headers["content-type"] == "video/mp4" and len(got.body()) > 1000
    tab.shot("admin-recordings-exported")

    # per session: the admin Sessions tab shows it under the session's title
    tab.goto("/admin/sessions")
    page.get_by_label("Search").fill(title)
    srow = page.get_by_test_id("sessions-rows").locator("tr", has_text=title)
    expect(srow.get_by_test_id("session-recordings")).to_be_visible()
    expect(srow.get_by_role("link", name="Download MP4")).to_be_visible()

    # ... and the mentor's Past list, with play in a dialog
    mt: Tab = open_tab()
    mt.login(mentor.user["email"], PASSWORD)
    mt.goto("/mentor/sessions?view=past")
    card = mt.page.locator(f'li[data-session-id="{s["id"]}"]')
    block = card.get_by_test_id("session-recordings")
    expect(block).to_be_visible()
    block.get_by_role("button", name="Play Ann").click()
    mt.page.wait_for_function(VIDEO_PLAYABLE % "[data-testid=recording-video]", timeout=20_000)
    mt.page.get_by_role("button", name="Close").click()
    assert mt.console_errors == [], mt.console_errors

    # [Delete] (confirmed) removes the row, the file and the API's record
    tab.goto(f"/admin/recordings?session_id={s['id']}")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#recordings-empty")).to_be_visible()
    assert page.request.get(f"/api/recordings/{rid}").status == 404
    assert not svc.recording_dir(Context.of(live_server._runner.app), rid).exists()  # type: ignore[union-attr]
    assert tab.console_errors == [], tab.console_errors
