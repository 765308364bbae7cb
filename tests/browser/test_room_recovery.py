"""A class survives a network blackout: every packet to and from the SFU dropped for 3 s,
then the mentor and the learner see each other again without anyone rejoining; for 8 s, an
ICE restart brings them back on the same peer connection; for 30 s, the page rejoins by
itself. Each participant in their own Chromium process; the blackout is tc on loopback (root)."""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

import pytest

from benchmarks.blackout import SAMPLER, recovery_s
from benchmarks.netshape import SFU_PORT_JS, blackout
from tests.browser.conftest import Api
from tests.browser.room_participants import (
    Participant,
    class_with_learners,
    everyone_decodes_everyone,
    poll,
)

pytestmark = pytest.mark.browser


def test_after_a_3_s_blackout_both_see_each_other_again_on_the_same_connection(people: Any, api_client: Api) -> None:
    mentor, learner = _in_a_class(people, api_client)
    port = int(mentor.page.evaluate(SFU_PORT_JS))
    assert port > 0
    with blackout(port):
        frames = (mentor.frames_from(learner), learner.frames_from(mentor))
        time.sleep(3)  # the blackout itself, not a wait for an event
        # nothing got through: no frame beyond what was in flight when it began
        assert mentor.frames_from(learner) - frames[0] < 15 and learner.frames_from(mentor) - frames[1] < 15
    back = time.time() * 1000
    # seconds from the network's return to the first frame, and to the first keyframe, decoded
    # of the other (the target is 1 s: the printed figures are the measurement, the
    # bound below only catches a recovery that does not happen on this shared machine)
    after = {p.name: (_recovered_after(p, back, 15), _keyframe_after(p, back, 8)) for p in (mentor, learner)}
    print(
        f"\n3 s blackout, load average {os.getloadavg()[0]:.1f}: "
        + ", ".join(
            f"{name} decodes a frame after {frame:.2f} s, a keyframe after "
            + (f"{key:.2f} s" if key is not None else "none within 8 s")
            for name, (frame, key) in after.items()
        )
    )
    # the bound is on frames decoded, what a person sees: a keyframe is needed only where the
    # stream had a hole the decoder cannot bridge (a quiet run saw frames again after 0.22 s
    # and the next keyframe only 6.6 s later, none having been needed)
    for name, (frame, _key) in after.items():
        assert frame <= 5.0, f"{name} decoded no new frame within 5 s of the network's return"
    mentor.wait_decoding(learner, timeout=10)
    learner.wait_decoding(mentor, timeout=10)
    for p in (mentor, learner):
        # the same peer connection (nobody rejoined)
        assert p.page.evaluate("() => window.__room.pc.__before_blackout === true"), f"{p.name} rejoined"
        assert poll(lambda: p.page.evaluate("() => window.__room.pc.connectionState") == "connected", 5)


def _ufrag(p: Participant) -> str:
    return str(p.page.evaluate("() => (/a=ice-ufrag:(\\S+)/.exec(window.__room.pc.localDescription.sdp) || [])[1]"))


def _live_class(people: Any, api_client: Api) -> tuple[Participant, Participant]:
    """A mentor and a learner, each in their own Chromium, live and decoding each other."""
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    mentor = people("mentor", mentor_acc, 1280, 800)
    learner = people("learner", learner_acc, 1280, 800)
    for p in (mentor, learner):
        p.enter(int(s["id"]))
        p.wait_live()
    everyone_decodes_everyone([mentor, learner])
    return mentor, learner


def _in_a_class(people: Any, api_client: Api) -> tuple[Participant, Participant]:
    if os.geteuid() != 0 or shutil.which("tc") is None:
        pytest.fail("this test drops packets on loopback with tc: it needs root and iproute2 (CI runs as root)")
    mentor, learner = _live_class(people, api_client)
    # each page samples the frames it decodes of the other every 50 ms, with its own clock
    mentor.page.evaluate(SAMPLER, learner.peer_id)
    learner.page.evaluate(SAMPLER, mentor.peer_id)
    for p in (mentor, learner):
        p.page.evaluate("() => { window.__room.pc.__before_blackout = true; window.__not_reloaded = true; }")
    return mentor, learner


def _keyframe_after(p: Participant, back_ms: float, timeout: float) -> float | None:
    """Seconds from the network's return to ``p``'s first new keyframe of the other's camera,
    or None if none came within ``timeout`` (none is needed where no hole had to be bridged)."""
    got: list[float] = []

    def check() -> bool:
        after = recovery_s(p.page.evaluate("() => window.__bo.samples"), back_ms, 3)
        if after is not None:
            got.append(after)
        return bool(got)

    poll(check, timeout)
    return got[0] if got else None


def _recovered_after(p: Participant, back_ms: float, timeout: float) -> float:
    """Seconds from the network's return to ``p``'s first new frame of the other's camera."""
    got: list[float] = []

    def check() -> bool:
        after = recovery_s(p.page.evaluate("() => window.__bo.samples"), back_ms)
        if after is not None:
            got.append(after)
        return bool(got)

    assert poll(check, timeout), (
        f"{p.name} decodes nothing of the other {timeout} s after the network returned; "
        f"its connections (time, generation, state): {p.page.evaluate('() => window.__bo.states')}, "
        f"last samples: {p.page.evaluate('() => window.__bo.samples.slice(-3)')}, "
        f"participants: {p.page.evaluate(PARTICIPANTS_JS)}, "
        # the sampler records nothing while the page has no peer connection (torn down for a
        # rejoin that never completed): the page's own phase, generation and reconnect attempt
        f"page (phase, generation, attempt, has pc): {p.page.evaluate(PAGE_JS)}"
    )
    return got[0]


PAGE_JS = """() => [window.__room.phase, window.__room.state.generation, window.__room.state.attempt,
  Boolean(window.__room.pc)]"""

# what the page knows of the others (a failure's context: a missing camera or mid shows here)
PARTICIPANTS_JS = """() => [...window.__room.state.participants.values()].map((p) =>
  [p.peer_id, p.tracks.map((t) => [t.source, t.mid, t.muted])])"""


def test_after_an_8_s_blackout_an_ice_restart_brings_both_back_on_the_same_connection(
    people: Any, api_client: Api
) -> None:
    mentor, learner = _in_a_class(people, api_client)
    ufrags = {p.name: _ufrag(p) for p in (mentor, learner)}
    port = int(mentor.page.evaluate(SFU_PORT_JS))
    assert port > 0
    with blackout(port):
        time.sleep(8)  # the blackout itself, not a wait for an event
        # Chromium calls a connection `disconnected` 5-8 s into an outage, when the page
        # restarts ICE: on a loaded machine that may come just after 8 s, and this test is
        # about the restart, so the network stays away until both pages sent theirs (<= 6 s more)
        poll(lambda: all(p.page.evaluate("() => window.__room.iceRestarts") >= 1 for p in (mentor, learner)), 6)
    back = time.time() * 1000
    # the figure is 2 s; 2.5 s leaves room for this shared machine's sampling
    for p in (mentor, learner):
        assert _recovered_after(p, back, timeout=15) <= 2.5, f"{p.name} took too long"
    mentor.wait_decoding(learner, timeout=10)
    learner.wait_decoding(mentor, timeout=10)
    for p in (mentor, learner):
        # the same peer connection (nobody rejoined), restarted: new ICE credentials
        assert p.page.evaluate("() => window.__room.pc.__before_blackout === true"), f"{p.name} rejoined"
        assert p.page.evaluate("() => window.__room.iceRestarts") >= 1
        assert _ufrag(p) != ufrags[p.name], f"{p.name} kept its ICE ufrag: no restart"
        assert poll(lambda: p.page.evaluate("() => window.__room.pc.connectionState") == "connected", 5)
        assert p.page.evaluate("() => window.__room.phase") == "live"


def test_after_a_30_s_blackout_the_page_rejoins_by_itself(people: Any, api_client: Api) -> None:
    mentor, learner = _in_a_class(people, api_client)
    port = int(mentor.page.evaluate(SFU_PORT_JS))
    assert port > 0
    with blackout(port):
        time.sleep(30)  # the blackout itself, not a wait for an event
    back = time.time() * 1000
    for p in (mentor, learner):
        _recovered_after(p, back, timeout=30)
    mentor.wait_decoding(learner, timeout=15)
    learner.wait_decoding(mentor, timeout=15)
    for p in (mentor, learner):
        # a new peer connection: the restart could not help, the page started over by itself,
        # without a reload (the page's own marker survived) and without asking anyone
        assert p.page.evaluate("() => window.__room.pc.__before_blackout !== true"), f"{p.name} did not rejoin"
        assert p.page.evaluate("() => window.__not_reloaded === true"), f"{p.name} reloaded"
        assert p.page.evaluate("() => window.__room.iceRestarts") >= 1  # it tried the restart first
        assert p.page.evaluate("() => window.__room.phase") == "live"


def test_a_rejoin_does_not_wait_behind_a_step_the_closed_connection_never_finishes(
    people: Any, api_client: Api
) -> None:
    """Chromium never settles an operation that was in flight when its connection closed (the
    spec says "abort these steps"). A rejoin closes the connection whatever it was doing: in
    CI the 30 s blackout's rejoin landed in the middle of a re-offer and the mentor's page sat
    in "Reconnecting…" with no connection, its `joined` queued behind the dead step."""
    mentor, learner = _live_class(people, api_client)
    mentor.page.evaluate(
        """async () => {
          const negotiation = await import("/static/js/room_negotiation.js");
          // the same module instance the page runs: a step that never settles, as a closed
          // connection's setRemoteDescription does, then the signaling socket drops
          negotiation.enqueue(() => new Promise(() => {}));
          window.__room.pc.__before_drop = true;
          window.__room.state.sock.ws.close(3001, "test: dropped");
        }"""
    )
    assert poll(
        lambda: mentor.page.evaluate(
            "() => window.__room.phase === 'live' && window.__room.pc?.__before_drop !== true"
        ),
        15,
    ), f"the mentor's page did not rejoin: {mentor.page.evaluate(PAGE_JS)}"
    mentor.wait_decoding(learner, timeout=15)
    learner.wait_decoding(mentor, timeout=15)


def test_a_join_the_server_never_answers_starts_over_by_itself(people: Any, api_client: Api) -> None:
    """The learner's first `join` is lost on the way (the socket stays open, no answer comes):
    the page does not hang in "Connecting…" but starts over, and the class goes on."""
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(int(s["id"]))
    mentor.wait_live()
    learner = people("learner", learner_acc, 1280, 800)
    swallowed: list[float] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_page(message: Any) -> None:
            if not swallowed and '"join"' in str(message):
                swallowed.append(time.monotonic())  # the server never hears it
                return
            server.send(message)

        ws.on_message(from_page)

    learner.page.route_web_socket(re.compile(r"/ws/room/"), route)
    learner.enter(int(s["id"]))
    learner.wait_live(timeout=45_000)
    assert swallowed, "the test's route never saw the page's join"
    print(f"\nlive again {time.monotonic() - swallowed[0]:.1f} s after the lost join")
    learner.wait_decoding(mentor, timeout=15)
    mentor.wait_decoding(learner, timeout=15)
