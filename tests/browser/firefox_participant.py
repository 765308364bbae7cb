"""A room participant in Debian's Firefox ESR, for the browser suite.

Playwright drives only its own patched Firefox builds, which the project never downloads;
``benchmarks/firefox_page.py`` (puppeteer-core over WebDriver BiDi, shared with the
benchmarks) drives ``/usr/bin/firefox-esr`` instead, one Firefox process per participant.
This class wraps that page and looks like :class:`~tests.browser.room_participants.Participant` to the
tests (``page.evaluate``, ``peer_id``, ``wait_live``, ``wait_decoding`` ...), so a Chromium
participant can wait to decode a Firefox one and the other way round with the same code.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.firefox_page import LOGIN, FirefoxPage, missing
from tests.browser.conftest import PASSWORD, Api
from tests.browser.room_participants import MEDIA_SUMMARY, Participant, poll


def require_firefox() -> None:
    """Fail (never skip) when the browser or the driver is missing: CI forbids skips."""
    if lack := missing():
        pytest.fail("the Firefox participant needs " + "; ".join(lack))


PHASE = """() => {
  const el = document.querySelector("#room");
  const room = window.__room;
  return {phase: el && el.dataset.phase, ready: !!(room && room.peerId && room.pc)};
}"""


# where a peer connection is stuck: ICE, DTLS and the candidate pairs (for failure messages)
TRANSPORT = """async () => {
  const pc = window.__room && window.__room.pc;
  if (!pc) return null;
  const t = pc.getSenders().map((s) => s.transport).find((x) => x) || pc.getReceivers().map((r) => r.transport).find((x) => x);
  const out = {ice: pc.iceConnectionState, gathering: pc.iceGatheringState, dtls: t && t.state,
    iceTransport: t && t.iceTransport && t.iceTransport.state, pairs: [], local: [], remote: []};
  (await pc.getStats()).forEach((s) => {
    if (s.type === "candidate-pair") out.pairs.push({state: s.state, nominated: s.nominated, sent: s.bytesSent, received: s.bytesReceived,
      requests: s.requestsSent, responses: s.responsesReceived});
    if (s.type === "local-candidate") out.local.push(`${s.candidateType} ${s.protocol} ${s.address}:${s.port}`);
    if (s.type === "remote-candidate") out.remote.push(`${s.candidateType} ${s.protocol} ${s.address}:${s.port}`);
  });
  return out;
}"""


class FirefoxParticipant(Participant):
    """One person in the room in their own Firefox process (``Participant``'s checks apply)."""

    def __init__(self, name: str, base: str, account: Api, log_dir: Path, width: int = 960, height: int = 720) -> None:
        # Participant.__init__ opens a Playwright context: not for Firefox, so set up our own
        self.name = name
        self.base = base
        self.account = account
        self.console_errors = []
        log_dir.mkdir(parents=True, exist_ok=True)
        self.page = FirefoxPage(name, width, height, log_dir / f"{name}.log")
        assert account.user is not None
        self.page.goto(base + "/login")
        status = self.page.evaluate(LOGIN, [account.user["email"], PASSWORD])
        assert status == 200, f"{name}: login answered {status}"

    def enter(self, session_id: int) -> None:
        self.page.goto(f"{self.base}/room/{session_id}")

    def wait_live(self, timeout: float = 30_000) -> None:
        # milliseconds, as Playwright's timeouts in Participant.wait_live
        state: dict[str, Any] = {}

        def live() -> bool:
            state.update(self.page.evaluate(PHASE))
            return state.get("phase") == "live" and bool(state.get("ready"))

        if not poll(live, timeout / 1000):
            raise AssertionError(f"{self.name} is not live in the room: {state} {self.page.evaluate(MEDIA_SUMMARY)}")

    def errors(self) -> list[str]:
        return list(self.page.call("errors"))

    def close(self) -> None:
        self.page.close()


def wait_connected(person: Participant, timeout: float = 25.0) -> float:
    """Seconds until ``person``'s peer connection is ``connected`` (AssertionError after ``timeout``)."""
    start = time.monotonic()
    state = ""

    def connected() -> bool:
        nonlocal state
        state = str(person.page.evaluate("() => window.__room && window.__room.pc && window.__room.pc.connectionState"))
        return state == "connected"

    if not poll(connected, timeout):
        raise AssertionError(
            f"{person.name}'s peer connection stayed {state!r} for {timeout} s: "
            f"{person.page.evaluate(TRANSPORT)} {person.page.evaluate(MEDIA_SUMMARY)}"
        )
    return time.monotonic() - start
