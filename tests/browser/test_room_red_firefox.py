"""A Chromium mentor sends its voice in Opus RED; a Firefox learner (Firefox ESR 153 offers no
RED) hears it: the SFU hands Firefox the primary Opus frame of each RED packet. Checked on the
SFU (the mentor's audio arrives as RED) and in Firefox's ``getStats()`` (the mentor's audio
plays: samples received, little concealed, a level)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.loss_probe import INBOUND_JS, audio_window, media_args, speech_like_wav
from tests.browser.conftest import ARTIFACTS, CHROMIUM, Api
from tests.browser.firefox_participant import FirefoxParticipant, require_firefox, wait_connected
from tests.browser.loss_room import count_audio_payload_types
from tests.browser.room_participants import MEDIA_ARGS, Participant, class_with_learners, poll

pytestmark = pytest.mark.browser

MIC_MID_SDP = """() => window.__room.pc.remoteDescription.sdp"""


@pytest.fixture
def chromium_with_voice(browser: Any, tmp_path: Path) -> Iterator[Any]:
    wav = speech_like_wav(tmp_path / "voice.wav", seconds=5.0)
    process = browser.browser_type.launch(executable_path=CHROMIUM, args=media_args(MEDIA_ARGS, wav))
    yield process
    process.close()


def test_a_firefox_learner_hears_a_chromium_mentor_who_sends_red(
    chromium_with_voice: Any, live_server: Any, api_client: Api
) -> None:
    require_firefox()
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = Participant("chromium mentor", chromium_with_voice, live_server.url, mentor_acc)
    learner = FirefoxParticipant("firefox learner", live_server.url, learner_acc, ARTIFACTS / "firefox")
    try:
        mentor.enter(sid)
        mentor.wait_live()
        mentor.wait_sending(frames=30)
        learner.enter(sid)
        learner.wait_live()
        wait_connected(learner)

        def hears() -> bool:
            stats = learner.page.evaluate(INBOUND_JS, [mentor.peer_id, "mic"])
            return bool(stats and (stats.get("totalSamplesReceived") or 0) > 48000)

        # audio only: this test is about the voice (video to Firefox has its own tests)
        assert poll(hears, 30.0), learner.page.evaluate(INBOUND_JS, [mentor.peer_id, "mic"])
        pts = count_audio_payload_types(live_server, sid)
        heard = audio_window(learner, mentor.peer_id, 8.0)
        red_pts = {pt for pt in pts["red"] if pt is not None}
        print({"firefox_hears": heard, "sfu": {"pts": pts["pts"], "red": sorted(red_pts)}})
        # the mentor's Chromium took RED from the SFU's answer and sends it
        assert red_pts, pts
        assert sum(n for pt, n in pts["pts"].items() if pt in red_pts) > 0, pts
        # Firefox was offered RED for the mentor's voice and did not take it
        assert "red/48000" not in learner.page.evaluate("() => window.__room.pc.localDescription.sdp")
        # and plays the mentor's voice: plain Opus it can decode, little made up, a level
        assert heard["samples"] > 0.8 * 48000 * 8.0, heard
        assert heard["concealed_pct"] is not None and heard["concealed_pct"] < 10.0, heard
        assert heard["rms_level"] and heard["rms_level"] > 0.01, heard
    finally:
        learner.close()
        mentor.close()
