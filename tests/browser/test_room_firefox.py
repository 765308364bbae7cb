"""Firefox in the live room: a Chromium mentor holds a running class, a learner joins it in
Debian's Firefox ESR (its own process, fake devices) and both decode each other's camera,
checked per publisher with ``getStats()`` (inbound-rtp ``framesDecoded`` growing on each side).

Issue 24: in 2 of 5 runs of exactly this join, Firefox's peer connection stayed ``connecting``
for 25 s with no error on the page. ``wait_connected`` fails with the state it saw, so a hang
shows up as that rather than as a decode timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, CHROMIUM, Api
from tests.browser.firefox_participant import FirefoxParticipant, require_firefox, wait_connected
from tests.browser.room_participants import MEDIA_ARGS, Participant, class_with_learners, poll

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium_process(browser: Any) -> Iterator[Any]:
    process = browser.browser_type.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
    yield process
    process.close()


@pytest.fixture
def firefox(live_server: Any) -> Iterator[Any]:
    require_firefox()
    made: list[FirefoxParticipant] = []

    def make(name: str, account: Api) -> FirefoxParticipant:
        p = FirefoxParticipant(name, live_server.url, account, ARTIFACTS / "firefox")
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_firefox_learner_joins_a_running_class_of_a_chromium_mentor(
    chromium_process: Any, firefox: Any, live_server: Any, api_client: Api
) -> None:
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])

    # the mentor's class is running: the room is open and the camera goes out
    mentor = Participant("chromium mentor", chromium_process, live_server.url, mentor_acc)
    try:
        mentor.enter(sid)
        mentor.wait_live()
        mentor.wait_sending(frames=30)

        learner = firefox("firefox learner", learner_acc)
        learner.enter(sid)
        learner.wait_live()
        wait_connected(learner)
        learner.wait_decoding(mentor)
        mentor.wait_decoding(learner)
        assert not [e for e in mentor.console_errors if "favicon" not in e], mentor.console_errors
        assert not [e for e in learner.errors() if "favicon" not in e], learner.errors()
    finally:
        mentor.close()


# per rid of the page's camera sender: encoded width, bytes and frames sent, and the
# encoding parameters the page asked for (as the sender reports them back)
LAYERS = """async () => {
  const room = window.__room;
  const out = {};
  (await room.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.rid)
      out[s.rid] = {width: s.frameWidth || 0, height: s.frameHeight || 0, bytes: s.bytesSent || 0, frames: s.framesEncoded || 0};
  });
  const tx = room.state.local.camTx;
  const params = tx ? tx.sender.getParameters().encodings : [];
  return {stats: out, asked: params.map((e) => ({rid: e.rid, scale: e.scaleResolutionDownBy, max: e.maxBitrate}))};
}"""


def test_firefox_mentor_and_a_chromium_learner_decode_each_other_with_simulcast(
    chromium_process: Any, firefox: Any, live_server: Any, api_client: Api
) -> None:
    """The reverse order of the first test: Firefox publishes (three simulcast layers), a
    Chromium learner decodes it and the mentor decodes the learner. Every rid comes out at
    the size the page asks for (q a quarter, h half, f the camera's own size).

    Issue 24 also says Firefox's ``q`` layer carries more bytes than ``h``: measured here it
    does (about 1 Mbit/s at 320x180 against the page's 150 kbit/s cap, in whichever order the
    page lists the encodings); the figures are printed, the cap is not asserted yet."""
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = firefox("firefox mentor", mentor_acc)
    mentor.enter(sid)
    mentor.wait_live()
    wait_connected(mentor)
    learner = Participant("chromium learner", chromium_process, live_server.url, learner_acc)
    try:
        learner.enter(sid)
        learner.wait_live()
        learner.wait_decoding(mentor)
        mentor.wait_decoding(learner)

        def widths() -> dict[str, int]:
            return {rid: int(v["width"]) for rid, v in mentor.page.evaluate(LAYERS)["stats"].items()}

        # the top layer starts once Firefox's estimate allows it: generous timeout
        assert poll(lambda: all(widths().get(rid, 0) > 0 for rid in ("q", "h", "f")), 45), mentor.page.evaluate(LAYERS)
        w = widths()
        assert w["q"] * 4 == w["f"] and w["h"] * 2 == w["f"], mentor.page.evaluate(LAYERS)
        print("firefox mentor layers:", mentor.page.evaluate(LAYERS))
        assert not [e for e in mentor.errors() if "favicon" not in e], mentor.errors()
    finally:
        learner.close()
