"""Simulcast in real Chromium: the camera goes out as three layers, and each subscriber gets
the one that fits it. A learner on a phone shows the mentor small and receives a small layer;
a learner on a desktop keeps the large one: nobody's screen size or link degrades anyone else.
Each participant in their own Chromium process."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from benchmarks.netshape import MEDIA_PORT_JS, downlink_limited
from tests.browser.conftest import Api
from tests.browser.room_participants import (
    HEIGHT_FROM,
    Participant,
    class_with_learners,
    everyone_decodes_everyone,
    poll,
)

pytestmark = pytest.mark.browser

# frames encoded per rid by the page's camera sender
LAYERS_SENT = """async () => {
  const out = {};
  (await window.__room.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) out[s.rid] = s.framesEncoded || 0;
  });
  return out;
}"""


def test_each_subscriber_gets_the_layer_that_fits_it(people: Any, api_client: Api) -> None:
    s, mentor_acc, (desk_acc, phone_acc) = class_with_learners(api_client, 2)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    desktop = people("desktop learner", desk_acc, 1600, 1000)
    desktop.enter(sid)
    phone = people("phone learner", phone_acc, 390, 700)
    phone.enter(sid)
    desktop.wait_live()
    phone.wait_live()
    everyone_decodes_everyone([mentor, desktop, phone])

    # the server accepted the simulcast offer: all three layers are encoded and sent
    assert poll(lambda: len([n for n in mentor.page.evaluate(LAYERS_SENT).values() if n > 0]) == 3, 15), (
        mentor.page.evaluate(LAYERS_SENT)
    )

    # the desktop learner features the mentor (speaker view, a large tile); the phone shows
    # the mentor in a small tile: the phone gets a smaller layer than the desktop
    desktop.page.locator('button[data-layout="speaker"]').click()
    peer = mentor.peer_id

    def heights() -> tuple[int, int]:
        return int(desktop.page.evaluate(HEIGHT_FROM, peer)), int(phone.page.evaluate(HEIGHT_FROM, peer))

    assert poll(lambda: 0 < heights()[1] < heights()[0], 20), heights()
    print("received heights (desktop, phone):", heights(), "layers sent:", mentor.page.evaluate(LAYERS_SENT))


def test_a_learner_on_a_300_kbit_link_does_not_take_the_others_down(people: Any, api_client: Api) -> None:
    """docs/architecture.md (numbers): one subscriber limited to 300 kbit/s, the others keep the top layer."""
    if os.geteuid() != 0 or shutil.which("tc") is None:
        pytest.fail("this test shapes loopback with tc: it needs root and iproute2 (CI runs as root)")
    s, mentor_acc, (good_acc, weak_acc) = class_with_learners(api_client, 2)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    good = people("well-connected learner", good_acc, 1600, 1000)
    weak = people("learner on 300 kbit/s", weak_acc, 1600, 1000)
    for learner in (good, weak):
        learner.enter(sid)
        learner.wait_live()
        learner.page.locator('button[data-layout="speaker"]').click()  # the mentor shown large
    everyone_decodes_everyone([mentor, good, weak])
    peer = mentor.peer_id

    def height(p: Participant) -> int:
        return int(p.page.evaluate(HEIGHT_FROM, peer))

    # both get the largest layer that fits their tile before anything is limited
    assert poll(lambda: height(good) > 180 and height(weak) > 180, 20), (height(good), height(weak))
    port = int(weak.page.evaluate(MEDIA_PORT_JS))
    assert port > 0
    with downlink_limited(port, 300):
        # the weak learner is moved to the small layer; the other keeps the large one ...
        assert poll(lambda: height(weak) == 180, 30), height(weak)
        assert height(good) > 180, (mentor.page.evaluate(LAYERS_SENT), mentor.page.evaluate(SEND_SIDE))
        # ... and the weak learner still sees the mentor (frames keep coming)
        weak.wait_decoding(mentor, timeout=20)
        good.wait_decoding(mentor)


def test_a_learner_alone_with_the_mentor_sees_the_top_layer(people: Any, api_client: Api) -> None:
    """A 1:1 on a big screen (1920x1080): the mentor's tile is ~420 device pixels tall, so
    the learner gets the 720-row layer (the smallest at least as tall as the tile), not the
    360-row one upscaled, and keeps it."""
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    learner = people("learner", learner_acc, 1920, 1080)
    learner.enter(sid)
    learner.wait_live()
    everyone_decodes_everyone([mentor, learner])
    peer = mentor.peer_id

    def height() -> int:
        return int(learner.page.evaluate(HEIGHT_FROM, peer))

    assert poll(lambda: height() >= 720, 40), (height(), mentor.page.evaluate(LAYERS_SENT))
    # and keeps it: 60 more frames decoded, still 720 rows
    frames = learner.frames_from(mentor)
    assert poll(lambda: learner.frames_from(mentor) > frames + 60, 20)
    assert height() >= 720, (height(), mentor.page.evaluate(LAYERS_SENT))


# the page's camera m-section negotiated transport-wide congestion control, and the
# send-side estimate of its selected candidate pair
SEND_SIDE = """async () => {
  const pc = window.__room.pc;
  const remote = pc.remoteDescription ? pc.remoteDescription.sdp : "";
  const video = remote.split("m=").filter((s) => s.startsWith("video") && /a=(sendrecv|recvonly)/.test(s));
  let estimate = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") estimate = s.availableOutgoingBitrate || 0;
  });
  return {
    twcc: video.some((s) => s.includes("transport-wide-cc") && /a=rtcp-fb:\\d+ transport-cc/.test(s)),
    estimate,
  };
}"""


def test_the_mentor_estimate_rises_on_transport_wide_feedback(people: Any, api_client: Api) -> None:
    """The server answers the camera with transport-cc and feeds back arrival times, so
    Chrome's send-side estimate climbs past what all three layers need (~2.1 Mbit/s) and
    the top layer goes out while the mentor waits for the class. On receiver reports alone
    it grows 8 % a second from 300 kbit/s: ~25 s to get there."""
    s, mentor_acc, _learners = class_with_learners(api_client, 1)
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(int(s["id"]))
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    sdp = "() => window.__room.pc.remoteDescription.sdp"
    assert mentor.page.evaluate(SEND_SIDE)["twcc"], mentor.page.evaluate(sdp)
    assert poll(lambda: mentor.page.evaluate(SEND_SIDE)["estimate"] > 2_000_000, 15), mentor.page.evaluate(SEND_SIDE)
    assert poll(lambda: mentor.page.evaluate(LAYERS_SENT).get("f", 0) > 0, 10), mentor.page.evaluate(LAYERS_SENT)
