"""A room page in Debian's Firefox ESR, for the benchmarks and the browser suite.

Playwright drives only its own patched Firefox builds, which the project never downloads;
``firefox_page.mjs`` (puppeteer-core over WebDriver BiDi) drives ``/usr/bin/firefox-esr``
instead, one Firefox process per page. ``FirefoxPage`` speaks to that script over
stdin/stdout JSON with the few calls the room code makes of a Playwright page (``goto``,
``evaluate``); ``FirefoxPerson`` is a benchmark participant in it, shaped like
``benchmarks.room_quality.Person`` (the browser suite wraps the same page in its own
participant class).
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

FIREFOX = os.environ.get("PEERLEARN_FIREFOX", "/usr/bin/firefox-esr")
SCRIPT = Path(__file__).with_name("firefox_page.mjs")
# `make install-test` installs puppeteer-core into web/ (npm ci); the script loads it from there
NODE_PATH = Path(__file__).resolve().parents[1] / "web" / "node_modules"

# sign in from the page (same origin), so the session cookie lands in Firefox's own jar
LOGIN = """async ([email, password]) => {
  const r = await fetch("/api/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({email, password}), credentials: "same-origin"});
  return r.status;
}"""


class FirefoxError(RuntimeError):
    """The driver did not start, answered an error, or went silent."""


def missing() -> list[str]:
    """What a Firefox page needs and this machine lacks (empty: all there)."""
    return [
        what
        for what, ok in (
            (f"Debian's Firefox ESR at {FIREFOX} (apt-get install firefox-esr)", Path(FIREFOX).exists()),
            ("node (apt-get install nodejs npm)", shutil.which("node") is not None),
            ("puppeteer-core in web/node_modules (make install-test)", (NODE_PATH / "puppeteer-core").is_dir()),
        )
        if not ok
    ]


class FirefoxPage:
    """One Firefox process with one page, driven by the Node script.

    Replies are read by a thread into a queue, so a hung browser turns into a timeout
    here instead of a caller blocked forever on a pipe."""

    def __init__(self, name: str, width: int, height: int, log: Path) -> None:
        self.name = name
        log.parent.mkdir(parents=True, exist_ok=True)
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
            raise FirefoxError(f"{name}: Firefox did not start: {ready} (log {log})")
        self.version = str(ready.get("version"))

    @property
    def pid(self) -> int:
        """The Node driver's process id (Firefox runs as its child)."""
        return self._proc.pid

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
            raise FirefoxError(f"{self.name}: {cmd} failed: {reply.get('error')}")
        return reply.get("value")

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        return self.call("evaluate", fn=fn, arg=arg) if arg is not None else self.call("evaluate", fn=fn)

    def goto(self, url: str) -> None:
        self.call("goto", url=url)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.call("close", timeout=20.0)
            except FirefoxError:
                pass
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._log.close()

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
            raise FirefoxError(f"{self.name}: no answer from the Firefox driver within {timeout} s") from None
        if reply is None:
            raise FirefoxError(f"{self.name}: the Firefox driver exited (rc={self._proc.poll()})")
        return reply


class FirefoxPerson:
    """A benchmark participant in their own Firefox process: signed in from the page, then
    the same calls as ``room_quality.Person`` (``page.evaluate``, ``enter``, ``peer_id``)."""

    def __init__(
        self,
        name: str,
        email: str,
        password: str,
        base: str,
        log_dir: Path,
        *,
        viewport: tuple[int, int] = (960, 720),
        on_enter: str | None = None,
    ) -> None:
        if lack := missing():
            raise FirefoxError("a Firefox participant needs " + "; ".join(lack))
        self.name = name
        self.base = base
        self.page = FirefoxPage(name, viewport[0], viewport[1], log_dir / f"firefox-{name}.log")
        self.page.goto(base + "/login")
        status = self.page.evaluate(LOGIN, [email, password])
        if status != 200:
            self.page.close()
            raise FirefoxError(f"login {email}: {status}")
        self.entered_at = 0.0
        #: a page function started once the room page has loaded (the benchmark's sampler)
        self.on_enter = on_enter

    def enter(self, session_id: int) -> None:
        self.entered_at = time.time() * 1000
        self.page.goto(f"{self.base}/room/{session_id}")
        if self.on_enter:
            self.page.evaluate(self.on_enter)

    def peer_id(self) -> str | None:
        return self.page.evaluate("() => window.__room && window.__room.peerId")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.page.close()
