"""The live room in the orders a class really goes, each participant in their own Chromium
process with fake devices: every participant must decode every other participant's camera
(and the screen share while it is on), checked per publisher with ``getStats()``.

Issue 12 lived here: the mentor published alone for a few seconds, learners arrived, and no
learner ever decoded the mentor's camera (the server's re-offer renumbered the mentor's VP8
payload type and the producer kept the old numbering). The old browser test had both pages
connecting at almost the same moment and summed frames over every stream, so it passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, Api
from tests.browser.room_participants import (
    MEDIA_ARGS,
    Participant,
    class_with_learners,
    everyone_decodes_everyone,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def processes(browser: Any) -> Iterator[list[Any]]:
    """Three Chromium processes (mentor, two learners), shared by the tests of this module:
    each test opens fresh contexts in them, so nobody shares a process with anyone else."""
    launched = [browser.browser_type.launch(executable_path=CHROMIUM, args=MEDIA_ARGS) for _ in range(3)]
    yield launched
    for b in launched:
        b.close()


@pytest.fixture
def people(processes: list[Any], live_server: Any) -> Iterator[Any]:
    made: list[Participant] = []

    def make(name: str, process: int, account: Api) -> Participant:
        p = Participant(name, processes[process], live_server.url, account)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_mentor_first_learners_late_then_reload_camera_toggle_and_mentor_return(people: Any, api_client: Api) -> None:
    s, mentor_acc, (l1_acc, l2_acc) = class_with_learners(api_client, 2)
    sid = int(s["id"])

    # the mentor opens the room and publishes alone for a while
    mentor = people("mentor", 0, mentor_acc)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=60)

    # the first learner arrives: the mentor's camera must reach them
    first = people("learner-1", 1, l1_acc)
    first.enter(sid)
    first.wait_live()
    first.wait_decoding(mentor)
    mentor.wait_decoding(first)

    # the second learner a few seconds later
    first.page.wait_for_timeout(5_000)
    second = people("learner-2", 2, l2_acc)
    second.enter(sid)
    second.wait_live()
    everyone_decodes_everyone([mentor, first, second])
    expect(second.page.locator('[data-tile][data-role="mentor"][data-source="camera"] video')).to_be_visible()
    # the server scores everyone's connection and every tile shows it (loopback: never poor or lost)
    for viewer in (mentor, first, second):
        for tile in viewer.page.locator("[data-tile]").all():
            expect(tile).to_have_attribute("data-quality", re.compile("^(excellent|good)$"), timeout=15_000)

    # the first learner reloads mid-class: a new page, a new peer connection
    first.page.reload()
    first.wait_live()
    everyone_decodes_everyone([mentor, first, second])

    # the mentor's camera off, then on again: both learners see it go and come back
    mentor.page.get_by_role("button", name="Camera Off", exact=True).click()
    for learner in (first, second):
        expect(learner.page.locator('[data-tile][data-role="mentor"][data-source="camera"]')).to_have_attribute(
            "data-camera", "off"
        )
    mentor.page.get_by_role("button", name="Camera On", exact=True).click()
    for learner in (first, second):
        expect(learner.page.locator('[data-tile][data-role="mentor"][data-source="camera"]')).to_have_attribute(
            "data-camera", "on"
        )
        learner.wait_decoding(mentor)

    # the mentor leaves and comes back: the learners decode the returning mentor
    mentor.page.get_by_role("button", name="Leave", exact=True).click()
    expect(first.page.locator('[data-tile][data-role="mentor"]')).to_have_count(0)
    mentor.enter(sid)
    mentor.wait_live()
    everyone_decodes_everyone([mentor, first, second])
    for p in (mentor, first, second):
        assert not [e for e in p.console_errors if "favicon" not in e], (p.name, p.console_errors)


def test_learner_waits_in_lobby_then_a_late_learner_joins_during_screen_share(people: Any, api_client: Api) -> None:
    s, mentor_acc, (l1_acc, l2_acc) = class_with_learners(api_client, 2)
    sid = int(s["id"])

    # a learner is early: the lobby, until the mentor opens the room
    first = people("learner-1", 1, l1_acc)
    first.enter(sid)
    expect(first.page.get_by_role("heading", name="Waiting for Mentor…")).to_be_visible()
    first.page.wait_for_timeout(3_000)

    mentor = people("mentor", 0, mentor_acc)
    mentor.enter(sid)
    mentor.wait_live()
    first.wait_live()  # the lobby joins by itself
    everyone_decodes_everyone([mentor, first])

    # the mentor shares the screen: it arrives as its own stream
    mentor.page.get_by_role("button", name="Share Screen").click()
    expect(mentor.page.get_by_role("button", name="Stop Sharing")).to_be_visible()
    first.wait_decoding(mentor, "screen")

    # a learner arrives late, while the screen is shared: camera and screen both reach them
    second = people("learner-2", 2, l2_acc)
    second.enter(sid)
    second.wait_live()
    second.wait_decoding(mentor, "screen")
    everyone_decodes_everyone([mentor, first, second])
    expect(second.page.locator('[data-tile][data-role="mentor"][data-source="screen"]')).to_be_visible()

    # sharing stops: the screen tile goes away everywhere, cameras keep flowing
    mentor.page.get_by_role("button", name="Stop Sharing").click()
    for learner in (first, second):
        expect(learner.page.locator('[data-tile][data-source="screen"]')).to_have_count(0)
        learner.wait_decoding(mentor)
