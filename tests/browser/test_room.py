"""The live room in real Chromium with fake camera/microphone: two browsers join one room
through our SFU and each decodes the other's video (getStats framesDecoded grows), chat both
ways, mute and camera-off show on the other side, screen share arrives as its own tile, a
dropped connection rejoins, a second tab replaces the first, [End Class] shows "Session ended"
and feedback; the learner is on a phone-sized viewport. A learner without camera permission
joins receive-only; recording shows its indicator. Plus the page guards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, PASSWORD, Api, Tab, _open_tab
from tests.browser.room_participants import MEDIA_ARGS, class_with_learners, poll

pytestmark = pytest.mark.browser


# Sum of framesDecoded over the page's inbound video streams (window.__room.pc is the room's RTCPeerConnection).
FRAMES = """async () => {
  const pc = window.__room && window.__room.pc;
  if (!pc) return 0;
  const report = await pc.getStats();
  let n = 0;
  report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") n += s.framesDecoded || 0; });
  return n;
}"""


@pytest.fixture(scope="module")
def media_browser(browser: Any) -> Iterator[Any]:
    """A second Chromium from the same Playwright, with fake media devices (never `playwright install`)."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
    yield b
    b.close()


@pytest.fixture
def media_tab(media_browser: Any, live_server: Any) -> Iterator[Any]:
    tabs: list[Tab] = []

    def make(width: int = 1280, height: int = 900) -> Tab:
        t = _open_tab(media_browser, live_server.url, width, height)
        t.context.grant_permissions(["camera", "microphone"], origin=live_server.url)
        tabs.append(t)
        return t

    yield make
    for t in tabs:
        t.context.close()


def _class_soon(api_client: Api) -> tuple[dict[str, Any], Api, Api]:
    """A session of a fresh mentor starting in ~5 minutes, booked by a fresh learner."""
    s, mentor, (learner,) = class_with_learners(api_client, 1)
    return s, mentor, learner


def _frames(page: Any) -> int:
    return int(page.evaluate(FRAMES))


def _wait_frames_above(page: Any, least: int, timeout: float = 20.0) -> None:
    # polled with evaluate (which awaits the page's promise): wait_for_function would take
    # the async predicate's Promise for a truthy answer and pass at once
    assert poll(lambda: _frames(page) > least, timeout), f"decoded frames stayed at {_frames(page)} (want > {least})"


def _wait_decoding(page: Any) -> None:
    """Remote video is being decoded: framesDecoded is positive, then grows."""
    _wait_frames_above(page, 0, 30.0)
    _wait_frames_above(page, _frames(page) + 5)


def _class_began(server: Any, session_id: int) -> None:
    """The clock moves on: the class started 29 minutes ago and everyone now in the room has been
    there 30 minutes longer, so what the SFU saw counts as a class (docs/money.md); the booked
    terms move with it (time travel, not a mentor's move)."""
    from sqlalchemy import select, update

    from api.context import Context
    from api.models import AttendanceInterval, Booking, Session

    async def began(app: Any) -> None:
        start = datetime.now(timezone.utc) - timedelta(minutes=29)
        async with Context.of(app).db.write() as s:
            await s.execute(update(Session).where(Session.id == session_id).values(starts_at=start))
            await s.execute(update(Booking).where(Booking.session_id == session_id).values(booked_starts_at=start))
            rows = await s.scalars(select(AttendanceInterval).where(AttendanceInterval.session_id == session_id))
            for row in rows.all():
                row.joined_at = row.joined_at - timedelta(minutes=30)

    server.run(began)


def test_two_browsers_decode_each_other_chat_mute_and_end(media_tab: Any, api_client: Api, live_server: Any) -> None:
    s, mentor, learner = _class_soon(api_client)
    room = f"/room/{s['id']}"
    assert mentor.user is not None and learner.user is not None

    # the learner (on a phone) arrives first: the room isn't open yet
    lt = media_tab(390, 844)
    lt.login(learner.user["email"], PASSWORD)
    lt.goto(room)
    lp = lt.page
    expect(lp.get_by_role("heading", name="Waiting for Mentor…")).to_be_visible()
    # phone layout: the controls are on screen
    for name in ("Mute", "Camera Off", "Leave Lobby", "Chat"):
        expect(lp.get_by_role("button", name=name, exact=True)).to_be_in_viewport()

    mt = media_tab()
    mt.login(mentor.user["email"], PASSWORD)
    mt.goto(room)
    mp = mt.page
    expect(mp.locator("#room")).to_have_attribute("data-phase", "live")
    # the mentor opened the room: the learner's page joins by itself
    expect(lp.locator("#room")).to_have_attribute("data-phase", "live", timeout=20_000)

    _wait_decoding(mp)
    _wait_decoding(lp)
    expect(mp.locator('[data-tile][data-role="learner"][data-source="camera"]')).to_be_visible()
    expect(lp.locator('[data-tile][data-role="mentor"][data-source="camera"]')).to_be_visible()
    expect(mp.locator("#people-count")).to_have_text("2")
    mt.shot("room-live-desktop")
    lt.shot("room-live-phone")

    # screen share: a second video track from the mentor arrives as its own tile
    mp.get_by_role("button", name="Share Screen").click()
    expect(mp.get_by_role("button", name="Stop Sharing")).to_be_visible()
    screen_tile = lp.locator('[data-tile][data-role="mentor"][data-source="screen"]')
    expect(screen_tile).to_be_visible(timeout=20_000)
    lp.wait_for_function(
        "() => { const v = document.querySelector('[data-tile][data-source=screen] video'); return v && v.videoWidth > 0; }",
        timeout=20_000,
    )
    mt.shot("room-screen-desktop")
    mp.get_by_role("button", name="Stop Sharing").click()
    expect(screen_tile).to_have_count(0, timeout=20_000)

    # chat both ways (the learner opens the chat sheet on the phone)
    mp.get_by_label("Message", exact=True).fill("Welcome, everyone!")
    mp.get_by_role("button", name="Send").click()
    lp.get_by_role("button", name="Chat", exact=True).click()
    expect(lp.locator("#chat-log")).to_contain_text("Welcome, everyone!")
    lp.get_by_label("Message", exact=True).fill("Hi from the learner")
    lp.get_by_role("button", name="Send").click()
    expect(mp.locator("#chat-log")).to_contain_text("Hi from the learner")

    # the learner mutes: the mentor sees it on the learner's tile
    lp.get_by_role("button", name="Mute", exact=True).click()
    expect(lp.get_by_role("button", name="Unmute", exact=True)).to_be_visible()
    learner_tile = mp.locator('[data-tile][data-role="learner"][data-source="camera"]')
    expect(learner_tile).to_have_attribute("data-mic", "muted")
    expect(learner_tile.get_by_text("Muted")).to_be_visible()
    lp.get_by_role("button", name="Unmute", exact=True).click()
    expect(learner_tile).to_have_attribute("data-mic", "on")

    # the mentor's camera off shows on the learner's side, and on again resumes decoding
    mp.get_by_role("button", name="Camera Off", exact=True).click()
    mentor_tile = lp.locator('[data-tile][data-role="mentor"][data-source="camera"]')
    expect(mentor_tile).to_have_attribute("data-camera", "off")
    mp.get_by_role("button", name="Camera On", exact=True).click()
    expect(mentor_tile).to_have_attribute("data-camera", "on")
    _wait_frames_above(lp, _frames(lp) + 5)

    # the learner's connection drops: the page rejoins with a fresh token and a NEW peer connection,
    # and both sides decode again without anyone doing anything
    lp.evaluate("() => { window.__oldPc = window.__room.pc; window.__room.state.sock.ws.close(); }")
    lp.wait_for_function(
        "() => window.__room.phase === 'live' && window.__room.pc && window.__room.pc !== window.__oldPc",
        timeout=20_000,
    )
    _wait_decoding(lp)
    _wait_frames_above(mp, _frames(mp) + 5)

    # the mentor opens the room in a second tab: the first one is told, the second one takes over
    mp2 = mt.context.new_page()
    mp2.goto(mt.base + room)
    expect(mp.get_by_role("heading", name="You joined from another tab")).to_be_visible(timeout=20_000)
    expect(mp2.locator("#room")).to_have_attribute("data-phase", "live")
    _wait_decoding(mp2)

    # End Class (with confirmation) → both see "Session ended"; the learner can leave feedback
    _class_began(live_server, int(s["id"]))
    mp = mp2
    mp.get_by_role("button", name="End Class").click()
    mp.get_by_role("button", name="End for everyone").click()
    expect(lp.get_by_role("heading", name="Session ended")).to_be_visible()
    expect(mp.get_by_role("heading", name="Session ended")).to_be_visible()
    expect(lp.get_by_role("button", name="Submit Feedback")).to_be_visible()
    lt.shot("room-ended-phone")
    assert mentor.call("GET", f"/api/sessions/{s['id']}")["status"] == "completed"
    lp.get_by_label("Comments").fill("Clear and friendly.")
    lp.get_by_role("button", name="Submit Feedback").click()
    expect(lp).to_have_url(lt.base + "/learner/dashboard")
    assert not [e for e in mt.console_errors + lt.console_errors if "favicon" not in e], (
        mt.console_errors + lt.console_errors
    )


def test_room_guards(tab: Tab, api_client: Api) -> None:
    s, _mentor, _learner = _class_soon(api_client)
    page = tab.page
    tab.goto(f"/room/{s['id']}")
    expect(page).to_have_url(f"{tab.base}/login?next=/room/{s['id']}")
    stranger = api_client.signup("learner")
    assert stranger.user is not None
    tab.login(stranger.user["email"], PASSWORD)
    resp = tab.goto(f"/room/{s['id']}")
    assert resp is not None and resp.status == 403
    expect(page.get_by_role("heading", name="You can't open this page")).to_be_visible()
    resp = tab.goto("/room/999999")
    assert resp is not None and resp.status == 404


DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


def test_learner_without_camera_permission_joins_receive_only(media_tab: Any, api_client: Api) -> None:
    s, mentor, learner = _class_soon(api_client)
    assert mentor.user is not None and learner.user is not None
    mt = media_tab()
    mt.login(mentor.user["email"], PASSWORD)
    mt.goto(f"/room/{s['id']}")
    expect(mt.page.locator("#room")).to_have_attribute("data-phase", "live")

    lt = media_tab()
    lt.context.add_init_script(DENY_MEDIA)
    lt.login(learner.user["email"], PASSWORD)
    lt.goto(f"/room/{s['id']}")
    lp = lt.page
    expect(lp.get_by_text("Camera and microphone access was blocked")).to_be_visible()
    expect(lp.locator("#room")).to_have_attribute("data-phase", "live")
    expect(lp.get_by_role("button", name="Mute", exact=True)).to_be_disabled()
    _wait_decoding(lp)  # it still sees and hears the mentor
    tile = mt.page.locator('[data-tile][data-role="learner"][data-source="camera"]')
    expect(tile).to_have_attribute("data-camera", "off")
    expect(tile.get_by_text("Camera off")).to_be_visible()
    # the mentor records: everyone sees the indicator; stopping hides it
    mp = mt.page
    mp.get_by_role("button", name="Record", exact=True).click()
    expect(lp.locator("#rec-indicator")).to_be_visible()
    expect(mp.locator("#rec-indicator")).to_have_text("Recording")
    mp.get_by_role("button", name="Stop recording").click()
    expect(lp.locator("#rec-indicator")).to_be_hidden()
    expect(mp.get_by_role("button", name="Record", exact=True)).to_be_visible()

    # [Leave] → the learner's sessions page; the mentor sees them go
    expect(mp.locator("#people-count")).to_have_text("2")
    lp.get_by_role("button", name="Leave").click()
    expect(lp).to_have_url(lt.base + "/learner/sessions")
    expect(mp.locator("#people-count")).to_have_text("1")
    expect(tile).to_have_count(0)


def test_lobby_avatars_ready_live_and_leave(media_tab: Any, api_client: Api) -> None:
    s, mentor, learner = _class_soon(api_client)
    other = api_client.signup("learner", interests=["Python"])
    other.call("POST", "/api/bookings/create", {"session_id": s["id"]}, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert mentor.user is not None and learner.user is not None
    lt = media_tab(390, 844)
    lt.login(learner.user["email"], PASSWORD)
    lt.goto(f"/room/{s['id']}")
    lp = lt.page
    expect(lp.get_by_role("heading", name="Waiting for Mentor…")).to_be_visible()
    people = lp.get_by_role("list", name="Lobby")
    mentor_item = people.locator(f'li[data-user-id="{mentor.user["id"]}"]')
    me_item = people.locator(f'li[data-user-id="{learner.user["id"]}"]')
    expect(mentor_item).to_contain_text("Not ready")
    expect(mentor_item).to_contain_text("Mentor")
    # being in the lobby marks the learner ready
    expect(me_item).to_have_attribute("data-ready", "true")
    expect(me_item).to_contain_text("Learner · you")
    expect(lp.locator("#lobby-summary")).to_have_text("1 of 2 learners ready · 1 other learner booked")
    lp.wait_for_function(f"() => (document.body.dataset.subscribed || '').split(' ').includes('{s['id']}')")
    # the others get ready elsewhere: the lobby follows without a reload
    other.call("POST", f"/api/rooms/{s['id']}/ready", {"ready": True})
    expect(lp.locator("#lobby-summary")).to_have_text("2 of 2 learners ready · 1 other learner booked")
    mentor.call("POST", f"/api/rooms/{s['id']}/ready", {"ready": True})
    expect(mentor_item).to_have_attribute("data-ready", "true")
    expect(mentor_item.locator("[data-ready-label]")).to_have_text("Ready")
    lt.shot("room-lobby-390")
    lp.get_by_role("button", name="Leave Lobby").click()
    expect(lp).to_have_url(lt.base + "/learner/sessions")
    assert not [e for e in lt.console_errors if "favicon" not in e], lt.console_errors
