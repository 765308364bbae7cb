"""A room participant in Debian's Firefox ESR, for the browser suite.

Playwright drives only its own patched Firefox builds, which the project never downloads;
``firefox_participant.mjs`` (puppeteer-core over WebDriver BiDi) drives ``/usr/bin/firefox-esr``
instead, one Firefox process per participant. This class speaks to that script over
stdin/stdout JSON and looks like :class:`~tests.browser.room_participants.Participant` to the
tests (``page.evaluate``, ``peer_id``, ``wait_live``, ``wait_decoding`` ...), so a Chromium
participant can wait to decode a Firefox one and the other way round with the same code.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD, Api
from tests.browser.room_participants import MEDIA_SUMMARY, Participant, poll

FIREFOX = os.environ.get("PEERLEARN_FIREFOX", "/usr/bin/firefox-esr")
SCRIPT = Path(__file__).with_name("firefox_participant.mjs")
# `make install-test` installs puppeteer-core into web/ (npm ci); the script loads it from there
NODE_PATH = Path(__file__).resolve().parents[2] / "web" / "node_modules"


def require_firefox() -> None:
    """Fail (never skip) when the browser or the driver is missing: CI forbids skips."""
    missing = [
        what
        for what, ok in (
            (f"Debian's Firefox ESR at {FIREFOX} (apt-get install firefox-esr)", Path(FIREFOX).exists()),
            ("node (apt-get install nodejs npm)", shutil.which("node") is not None),
            ("puppeteer-core in web/node_modules (make install-test)", (NODE_PATH / "puppeteer-core").is_dir()),
        )
        if not ok
    ]
    if missing:
        pytest.fail("the Firefox participant needs " + "; ".join(missing))


class BiDiPage:
    """The few page calls the room tests make, forwarded to the Node driver.

    Replies are read by a thread into a queue, so a hung browser turns into a timeout
    here instead of a test blocked forever on a pipe."""

    def __init__(self, name: str, width: int, height: int, log: Path) -> None:
        self.name = name
        self._log = log.open("wb")
        self._proc = subprocess.Popen(
            ["node", str(SCRIPT), FIREFOX, str(width), str(height)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"firefox-{name}", daemon=True)
        self._reader.start()
        self._next = 0
        ready = self._get(90.0)
        if not ready.get("ready"):
            raise AssertionError(f"{name}: Firefox did not start: {ready} (log {log})")
        self.version = str(ready.get("version"))

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                continue
        self._replies.put(None)  # the driver exited

    def _get(self, timeout: float) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no answer from the Firefox driver within {timeout} s") from None
        if reply is None:
            raise AssertionError(f"{self.name}: the Firefox driver exited (rc={self._proc.poll()})")
        return reply

    def call(self, cmd: str, timeout: float = 60.0, **fields: Any) -> Any:
        self._next += 1
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps({"id": self._next, "cmd": cmd, **fields}) + "\n").encode())
        self._proc.stdin.flush()
        while True:
            reply = self._get(timeout)
            if reply.get("id") == self._next:
                break
        if not reply.get("ok"):
            raise AssertionError(f"{self.name}: {cmd} failed: {reply.get('error')}")
        return reply.get("value")

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self.call("evaluate", fn=fn, arg=arg) if arg is not None else self.call("evaluate", fn=fn)

    def goto(self, url: str) -> None:
        self.call("goto", url=url)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.call("close", timeout=20.0)
            except AssertionError:
                pass
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._log.close()


# sign in from the page (same origin), so the session cookie lands in Firefox's own jar
LOGIN = """async ([email, password]) => {
  const r = await fetch("/api/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({email, password}), credentials: "same-origin"});
  return r.status;
}"""

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
        self.page = BiDiPage(name, width, height, log_dir / f"{name}.log")
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
