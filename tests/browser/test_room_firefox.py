"""Firefox in the live room: a Chromium mentor holds a running class, a learner joins it in
Debian's Firefox ESR (its own process, fake devices) and both decode each other's camera,
checked per publisher with ``getStats()`` (inbound-rtp ``framesDecoded`` growing on each side).

Issue 24: in 2 of 5 runs of exactly this join, Firefox's peer connection stayed ``connecting``
for 25 s with no error on the page. ``wait_connected`` fails with the state it saw, so a hang
shows up as that rather than as a decode timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, CHROMIUM, Api
from tests.browser.firefox_participant import FirefoxParticipant, require_firefox, wait_connected
from tests.browser.room_participants import HEIGHT_FROM, MEDIA_ARGS, Participant, class_with_learners, poll

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


def layer_octets(live_server: Any, session_id: int, peer_id: str) -> dict[str, int]:
    """Media bytes the SFU has received per rid of ``peer_id``'s camera (its own counters)."""

    async def read(app: Any) -> dict[str, int]:
        from api.keys import LIVE_ROOMS

        router = app[LIVE_ROOMS].get(session_id)
        peer = router.peers[peer_id] if router is not None else None
        for producer in peer.producers.values() if peer is not None else ():
            if producer.rids:
                return {rid: int(layer.media_octets) for rid, layer in zip(producer.rids, producer.layers)}
        return {}

    return dict(live_server.run(read))


def downlinks(live_server: Any, session_id: int) -> dict[str, Any]:
    """The SFU's side of each subscriber: its estimate and, per consumer, the layer it is on,
    aims at and the tile height it asked for (for failure messages)."""

    async def read(app: Any) -> dict[str, Any]:
        from api.keys import LIVE_ROOMS

        router = app[LIVE_ROOMS].get(session_id)
        out = {}
        for peer_id, peer in router.peers.items() if router is not None else ():
            stats = peer.downlink.stats()
            out[peer_id] = {k: stats[k] for k in ("estimate_bps", "budgets", "layers")}
        return out

    return dict(live_server.run(read))


def firefox_mentor_and_chromium_learner(
    chromium_process: Any, firefox: Any, live_server: Any, api_client: Api, width: int = 960, height: int = 720
) -> tuple[int, FirefoxParticipant, Participant]:
    """A class with its mentor live in Firefox, then a learner live in Chromium (``width`` x
    ``height``): (session id, mentor, learner)."""
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = firefox("firefox mentor", mentor_acc)
    mentor.enter(sid)
    mentor.wait_live()
    wait_connected(mentor)
    learner = Participant("chromium learner", chromium_process, live_server.url, learner_acc, width, height)
    learner.enter(sid)
    learner.wait_live()
    return sid, mentor, learner


def test_firefox_mentor_and_a_chromium_learner_decode_each_other_with_simulcast(
    chromium_process: Any, firefox: Any, live_server: Any, api_client: Api
) -> None:
    """The reverse of the first test: Firefox publishes (three simulcast layers), a Chromium
    learner decodes it and the mentor decodes the learner. Every rid comes out at the size the
    page asks for (q a quarter, h half, f the camera's own size) and, as the SFU receives them,
    q carries less than h and h less than f.

    Issue 24 said Firefox's ``q`` layer carried more bytes than ``h``: that is what Firefox's
    own ``getStats()`` says (outbound-rtp ``bytesSent`` per rid: ~0.9 MB for q against ~0.18 MB
    for h after 147 frames, q with 1791 packets to h's 242). On the wire, counted by the SFU
    per SSRC (the SSRCs Firefox's stats give each rid), q's media was ~120 kbit/s, h's ~250 and
    f's ~580, within the page's caps (150 k / 500 k / 1.5 M). The extra packets are not media:
    padding on the lowest layer's SSRC, which Firefox counts in its bytes and the SFU's
    ``media_octets`` skips (Firefox's log: "total_requested_padding_bitrate: 2090 kbps", up to
    what its 720p layer needs; docs/media-quality.md). The encodings the page sets are right.
    """
    sid, mentor, learner = firefox_mentor_and_chromium_learner(chromium_process, firefox, live_server, api_client)
    try:
        learner.wait_decoding(mentor)
        mentor.wait_decoding(learner)

        def widths() -> dict[str, int]:
            return {rid: int(v["width"]) for rid, v in mentor.page.evaluate(LAYERS)["stats"].items()}

        # the top layer starts once Firefox's estimate allows it: generous timeout
        assert poll(lambda: all(widths().get(rid, 0) > 0 for rid in ("q", "h", "f")), 45), mentor.page.evaluate(LAYERS)
        w = widths()
        assert w["q"] * 4 == w["f"] and w["h"] * 2 == w["f"], mentor.page.evaluate(LAYERS)

        # what the SFU receives per layer over a few seconds: q < h < f
        peer = mentor.peer_id
        before = layer_octets(live_server, sid, peer)
        learner.page.wait_for_timeout(5_000)
        after = layer_octets(live_server, sid, peer)
        sent = {rid: after[rid] - before.get(rid, 0) for rid in after}
        print(
            "firefox mentor: bytes per layer at the SFU over 5 s", sent, "firefox's stats", mentor.page.evaluate(LAYERS)
        )
        assert 0 < sent["q"] < sent["h"] < sent["f"], (sent, mentor.page.evaluate(LAYERS))
        assert not [e for e in mentor.errors() if "favicon" not in e], mentor.errors()
    finally:
        learner.close()


def test_a_chromium_learner_at_1920x1080_gets_a_firefox_mentor_in_hd(
    chromium_process: Any, firefox: Any, live_server: Any, api_client: Api
) -> None:
    """Issue 24's done-criterion with Firefox as the mentor: a 1:1 learner on a big screen
    decodes the mentor at >= 720 rows (the target is 3 s from the learner's connection coming
    up; the bound here is generous for a shared machine, the time is printed)."""
    sid, mentor, learner = firefox_mentor_and_chromium_learner(
        chromium_process, firefox, live_server, api_client, 1920, 1080
    )
    try:
        wait_connected(learner)
        up = time.monotonic()
        peer = mentor.peer_id

        def height() -> int:
            return int(learner.page.evaluate(HEIGHT_FROM, peer))

        # failing, say which side held it: Firefox's layers (frames per rid) or the SFU's choice
        assert poll(lambda: height() >= 720, 30, every=0.1), (
            height(),
            mentor.page.evaluate(LAYERS),
            layer_octets(live_server, sid, peer),
            downlinks(live_server, sid),
        )
        print(
            f"firefox mentor: the 1920x1080 learner decodes {height()} rows {time.monotonic() - up:.2f} s after connecting"
        )
        # and keeps it: 60 more frames, still 720 rows
        frames = learner.frames_from(mentor)
        assert poll(lambda: learner.frames_from(mentor) > frames + 60, 20)
        assert height() >= 720, (height(), mentor.page.evaluate(LAYERS))
    finally:
        learner.close()
