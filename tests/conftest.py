"""Shared fixtures: a migrated database per test (SQLite file, or PostgreSQL when
PEERLEARN_TEST_DATABASE_URL is set), the app, and signed-in API users.

Each test gets its own database cloned from a template migrated once per run,
so tests are isolated and fast.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.app import create_app
from api.keys import DB
from api.migrate import upgrade
from api.settings import Settings

PG_URL = os.environ.get("PEERLEARN_TEST_DATABASE_URL", "")
_counter = itertools.count(1)


def _pg_admin_dsn(url: str) -> tuple[str, str]:
    """(dsn to the maintenance db for asyncpg, base url without db name)."""
    base, _, _ = url.rpartition("/")
    return base.replace("postgresql+asyncpg", "postgresql") + "/postgres", base


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once: a SQLite file path, or a PostgreSQL template database name."""
    if PG_URL:
        import asyncpg

        dsn, base = _pg_admin_dsn(PG_URL)
        name = f"pl_tpl_{os.getpid()}"

        async def make() -> None:
            conn = await asyncpg.connect(dsn)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        asyncio.run(make())
        upgrade(f"{base}/{name}")
        return name
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return str(path)


async def _clone_pg(template: str) -> str:
    import asyncpg

    dsn, base = _pg_admin_dsn(PG_URL)
    name = f"pl_t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return f"{base}/{name}"


async def _drop_pg(url: str) -> None:
    import asyncpg

    dsn, _ = _pg_admin_dsn(PG_URL)
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(template_db: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        url = await _clone_pg(template_db)
        yield url
        await _drop_pg(url)
    else:
        target = tmp_path / "data" / "peerlearn.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template_db, target)
        yield f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Test settings: own data dir and database, generous auth limits, no scheduler."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        scheduler_enabled=False,
        auth_rate_limit=10_000,
        access_log=False,
        public_url="http://testserver",
        rtc_private_candidates="allow",  # aiortc clients on this machine offer private addresses
        migrate=False,  # the template database is migrated once
    )


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    app = create_app(settings)
    return await aiohttp_client(app)


@dataclass
class ApiUser:
    """A signed-in user driving the API with a bearer token."""

    client: TestClient
    id: int
    email: str
    password: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.request("POST", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)


PASSWORD = "Str0ng-passw0rd"


async def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    client.session.cookie_jar.clear()  # API users authenticate with the bearer header
    return await resp.json()


async def signup(
    client: TestClient, role: str = "learner", *, email: str | None = None, verified: bool = True, **fields: Any
) -> ApiUser:
    """A registered, signed-in user; e-mail confirmed unless ``verified=False`` (booking,
    publishing and payouts need it; tests about verification itself opt out)."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "full_name": f"Test {role.title()}", "role": role, **fields}
    resp = await client.post("/api/auth/register", json=body)
    assert resp.status == 201, await resp.text()
    if verified:
        await mark_verified(client, (await resp.json())["user"]["id"])
    data = await login(client, email)
    return ApiUser(client, data["user"]["id"], email, PASSWORD, role, data["access_token"])


async def mark_verified(client: TestClient, user_id: int) -> None:
    """Confirm a user's e-mail directly (what following the mailed link does)."""
    from sqlalchemy import update

    from api.models import User, utcnow

    async with client.app[DB].write() as s:
        await s.execute(update(User).where(User.id == user_id).values(email_verified_at=utcnow()))


async def delivered_mail(client: TestClient) -> Path:
    """Wait until the background sender has delivered what is queued; the outbox directory."""
    from api.keys import MAILER, SETTINGS

    await client.app[MAILER].flush()
    return client.app[SETTINGS].outbox_dir


async def make_admin(client: TestClient, email: str | None = None) -> ApiUser:
    from api.services.accounts import create_admin

    email = email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await create_admin(client.app[DB], email, PASSWORD)
    data = await login(client, email)
    return ApiUser(client, data["user"]["id"], email, PASSWORD, "admin", data["access_token"])


@pytest.fixture
async def learner(client: TestClient) -> ApiUser:
    return await signup(client, "learner", interests=["Python"])


@pytest.fixture
async def mentor(client: TestClient) -> ApiUser:
    return await signup(client, "mentor", domains=["Programming"], skills=["Python"])


@pytest.fixture
async def admin(client: TestClient) -> ApiUser:
    return await make_admin(client)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API holds an event loop in the main thread."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_logreport(report: Any) -> Iterator[None]:
    """With PEERLEARN_FORBID_SKIPS=1 (CI), a skipped test is a failure: a missing
    dependency must never let a suite pass silently."""
    if os.environ.get("PEERLEARN_FORBID_SKIPS") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped while PEERLEARN_FORBID_SKIPS=1: {report.longrepr}"
    yield
