"""A class survives a network blackout: every packet to and from the SFU dropped for 3 s,
then the mentor and the learner see each other again without anyone rejoining. Each
participant in their own Chromium process; the blackout is tc on loopback (root)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.netshape import SFU_PORT_JS, blackout
from tests.browser.conftest import CHROMIUM, Api
from tests.browser.room_participants import (
    MEDIA_ARGS,
    Participant,
    class_with_learners,
    everyone_decodes_everyone,
    poll,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def people(browser: Any, live_server: Any) -> Iterator[Any]:
    made: list[tuple[Participant, Any]] = []

    def make(name: str, account: Api, width: int, height: int) -> Participant:
        process = browser.browser_type.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
        p = Participant(name, process, live_server.url, account, width, height)
        made.append((p, process))
        return p

    yield make
    for p, process in made:
        p.close()
        process.close()


def test_after_a_3_s_blackout_both_see_each_other_again_on_the_same_connection(people: Any, api_client: Api) -> None:
    if os.geteuid() != 0 or shutil.which("tc") is None:
        pytest.fail("this test drops packets on loopback with tc: it needs root and iproute2 (CI runs as root)")
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    learner = people("learner", learner_acc, 1280, 800)
    for p in (mentor, learner):
        p.enter(sid)
        p.wait_live()
    everyone_decodes_everyone([mentor, learner])
    for p in (mentor, learner):
        p.page.evaluate("() => { window.__room.pc.__before_blackout = true; }")
    port = int(mentor.page.evaluate(SFU_PORT_JS))
    assert port > 0
    with blackout(port):
        frames = (mentor.frames_from(learner), learner.frames_from(mentor))
        time.sleep(3)  # the blackout itself, not a wait for an event
        # nothing got through: no frame beyond what was in flight when it began
        assert mentor.frames_from(learner) - frames[0] < 15 and learner.frames_from(mentor) - frames[1] < 15
    # both decode again, on the same peer connection (nobody rejoined)
    mentor.wait_decoding(learner, timeout=10)
    learner.wait_decoding(mentor, timeout=10)
    for p in (mentor, learner):
        assert p.page.evaluate("() => window.__room.pc.__before_blackout === true"), f"{p.name} rejoined"
        assert poll(lambda: p.page.evaluate("() => window.__room.pc.connectionState") == "connected", 5)
