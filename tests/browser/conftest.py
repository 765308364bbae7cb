"""Browser suite fixtures: the real app on a real port with demo data, and Debian's Chromium.

The server runs in its own thread and event loop (aiohttp AppRunner + TCPSite on
127.0.0.1), so Playwright's sync API drives the browser from plain ``def`` tests
without fighting pytest-asyncio over loops. Never run ``playwright install``:
the browser is ``/usr/bin/chromium``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from api.app import create_app
from api.demo import DEMO_PASSWORD, load_demo
from api.settings import Settings

CHROMIUM = os.environ.get("PEERLEARN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("PEERLEARN_BROWSER_ARTIFACTS", "test-results/browser"))
PASSWORD = "Str0ng-passw0rd"

DEMO_LEARNER = "liam.park@peerlearn.local"
DEMO_MENTOR = "ada.lovelace@peerlearn.local"
DEMO_ADMIN = "admin@peerlearn.local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """create_app(settings) served on 127.0.0.1 from a background thread with its own loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.public_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self._started = threading.Event()
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(60):
            raise RuntimeError("the live server did not start within 60 s")
        if self._error is not None:
            raise RuntimeError("the live server failed to start") from self._error

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def run(self, fn: Any, timeout: float = 120) -> Any:
        """``await fn(app)`` in the server's own loop: test set-up through the services."""
        assert self._runner is not None
        return asyncio.run_coroutine_threadsafe(fn(self._runner.app), self._loop).result(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        await load_demo(self.settings)
        app = create_app(self.settings)
        # as `serve` runs it (api/cli.py): open handlers get 5 s at shutdown, not aiohttp's default 60 s,
        # which outlasted stop()'s 30 s wait when a handler was still open at the end of a run
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.host, self.settings.port).start()


@dataclass
class Api:
    """A tiny JSON client for test set-up against the live server (bearer auth)."""

    base: str
    token: str | None = None
    user: dict[str, Any] | None = None
    # The live server's outbox: signup() confirms the e-mail with the mailed link, as a person would.
    outbox: Path | None = None

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path} -> {exc.code}: {exc.read().decode()[:500]}") from exc
        return json.loads(raw) if raw else None

    def login(self, email: str, password: str) -> "Api":
        out = self.call("POST", "/api/auth/login", {"email": email, "password": password})
        return Api(self.base, out["access_token"], out["user"], self.outbox)

    def signup(self, role: str = "learner", *, verified: bool = True, **fields: Any) -> "Api":
        """A new account, signed in; its e-mail confirmed unless ``verified=False``."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "full_name": f"Test {role.title()}", "role": role, **fields}
        self.call("POST", "/api/auth/register", body)
        if verified:
            self.call("POST", "/api/auth/verify-email", {"token": self.mailed_token(email, "/verify-email")})
        return self.login(email, PASSWORD)

    def mailed_token(self, to: str, path: str, timeout: float = 10.0) -> str:
        """The token of the link to ``path`` in the newest e-mail to ``to`` (the server's
        background sender writes it moments after the request that queued it)."""
        import email as email_lib
        import re
        import time

        assert self.outbox is not None, "Api(outbox=...) is needed to read mailed links"
        deadline = time.monotonic() + timeout
        while True:
            for eml in sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
                msg = email_lib.message_from_bytes(eml.read_bytes())
                if msg["To"] != to:
                    continue
                part = (
                    msg
                    if not msg.is_multipart()
                    else next(p for p in msg.walk() if p.get_content_type() == "text/plain")
                )
                found = re.search(re.escape(path) + r"\?token=([\w\-]+)", part.get_payload(decode=True).decode())
                if found:
                    return found.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no e-mail with {path} to {to}")
            time.sleep(0.1)


def complete_session(server: LiveServer, mentor: Api, session_id: int, *, hold_over: bool = False) -> None:
    """The class took place: it started an hour ago, the mentor opened the room (the rooms
    service, as the room's signaling does) and every booked learner was in it (stored as the
    room's join events are), then the mentor pressed End (POST /api/rooms/{id}/end).
    ``hold_over``: time passes beyond the earnings hold as well, so the mentor's money is available."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from api.context import Context
    from api.models import Booking, BookingStatus, Session
    from api.services import attendance, rooms
    from api.services.money import settlement

    async def take_place(app: Any) -> None:
        ctx = Context.of(app)
        start = datetime.now(UTC) - timedelta(hours=1)
        async with ctx.db.write() as s:
            await s.execute(update(Session).where(Session.id == session_id).values(starts_at=start))
            await s.execute(update(Booking).where(Booking.session_id == session_id).values(booked_starts_at=start))
            learners = (
                await s.scalars(
                    select(Booking.learner_id).where(
                        Booking.session_id == session_id, Booking.status == BookingStatus.confirmed
                    )
                )
            ).all()
        await rooms.start_class(ctx, session_id)
        await attendance.record_join(ctx, session_id, int(mentor.user["id"]), "mentor", "", start)  # type: ignore[index]
        for uid in learners:
            await attendance.record_join(ctx, session_id, uid, "learner", "", start + timedelta(minutes=1))

    async def hold_passes(app: Any) -> None:
        later = datetime.now(UTC) + timedelta(days=31)
        await settlement.release_due(Context.of(app), later, session_id=session_id)

    server.run(take_place)
    mentor.call("POST", f"/api/rooms/{session_id}/end")
    if hold_over:
        server.run(hold_passes)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole platform with demo data (loaded in the server's own loop) on a free port (scheduler off: tests drive time-free flows)."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    port = _free_port()
    settings = Settings(
        data_dir=data_dir,
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        scheduler_enabled=False,
        auth_rate_limit=100_000,
        access_log=False,
    ).prepared()
    server = LiveServer(settings)
    server.start()
    from tests.browser import room_participants  # it imports this module

    room_participants.SERVERS.append(server)  # a failed wait prints the SFU's side too
    yield server
    room_participants.SERVERS.remove(server)
    server.stop()


@pytest.fixture(scope="session")
def api_client(live_server: LiveServer) -> Api:
    return Api(live_server.url, outbox=live_server.settings.outbox_dir)


# Package scope: Playwright's sync API keeps an event loop running in the main thread
# while it is open; closing it when the browser suite ends lets the async suites after
# it (pytest-asyncio) start their own loops.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        # `make test` installs it; a missing browser must fail loudly, never pass as a skip.
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """A browser context + page with its console errors and every requested URL recorded."""

    context: Any
    page: Any
    base: str
    console_errors: list[str]
    requests: list[str]

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, email: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        """Sign in through the API with the context's cookie jar (fast set-up; the UI login has its own test)."""
        resp = self.context.request.post(self.base + "/api/auth/login", data={"email": email, "password": password})
        assert resp.ok, resp.text()
        return resp.json()  # type: ignore[no-any-return]

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _open_tab(browser: Any, base: str, width: int, height: int, bypass_csp: bool = False) -> Tab:
    # bypass_csp: only for the accessibility pass, which injects axe-core into the page.
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base, bypass_csp=bypass_csp)
    page = context.new_page()
    tab = Tab(context, page, base, [], [])
    page.on("console", lambda m: tab.console_errors.append(f"{m.text} @ {page.url}") if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.console_errors.append(f"{e} @ {page.url}"))
    page.on("request", lambda r: tab.requests.append(r.url))
    page.set_default_timeout(15_000)
    return tab


@pytest.fixture
def tab(browser: Any, live_server: LiveServer) -> Iterator[Tab]:
    """A desktop-sized (1280x900) tab."""
    t = _open_tab(browser, live_server.url, 1280, 900)
    yield t
    t.context.close()


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Tab]:
    """A phone-sized (390x844) tab."""
    t = _open_tab(browser, live_server.url, 390, 844)
    yield t
    t.context.close()


@pytest.fixture
def open_tab(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """Factory for extra tabs (a second user, another viewport)."""
    tabs: list[Tab] = []

    def make(width: int = 1280, height: int = 900, *, bypass_csp: bool = False) -> Tab:
        t = _open_tab(browser, live_server.url, width, height, bypass_csp)
        tabs.append(t)
        return t

    yield make
    for t in tabs:
        t.context.close()


@pytest.fixture(scope="session", autouse=True)
def _clean_artifacts() -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)


@pytest.fixture
def people(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """``make(name, account, width, height)``: a room participant in a Chromium process of its
    own (fake camera and microphone), closed with its process after the test."""
    from tests.browser.room_participants import MEDIA_ARGS, Participant  # it imports this module

    made: list[tuple[Any, Any]] = []

    def make(name: str, account: Api, width: int, height: int) -> Any:
        process = browser.browser_type.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
        p = Participant(name, process, live_server.url, account, width, height)
        made.append((p, process))
        return p

    yield make
    for p, process in made:
        p.close()
        process.close()
