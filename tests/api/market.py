"""Helpers for the marketplace tests: sessions, bookings, money."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp.test_utils import TestClient

from api.keys import DB, SETTINGS
from api.models import Role, User, utcnow
from api.security import hash_password, issue_access_token
from tests.conftest import ApiUser

_HASH: list[str] = []


def future(hours: float = 48) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


async def draft(mentor: ApiUser, **fields: Any) -> dict[str, Any]:
    body = {
        "title": "Python testing clinic",
        "description": "Bring your flaky tests.",
        "curriculum": ["Fixtures", "Mocks"],
        "domain": "Programming",
        "skills": ["Python", "pytest"],
        "price_cents": 2000,
        "currency": "USD",
        "capacity": 5,
        "starts_at": future(),
        "duration_min": 60,
        **fields,
    }
    resp = await mentor.post("/api/sessions", json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def published(mentor: ApiUser, **fields: Any) -> dict[str, Any]:
    sess = await draft(mentor, **fields)
    resp = await mentor.post(f"/api/sessions/{sess['id']}/publish")
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def book(user: ApiUser, session_id: int, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await user.post("/api/bookings/create", json={"session_id": session_id}, headers=headers)


async def quick_users(client: TestClient, n: int, role: str = "learner") -> list[ApiUser]:
    """Many signed-in users fast: inserted directly (no argon2 per user), real tokens."""
    if not _HASH:
        _HASH.append(await asyncio.to_thread(hash_password, "Str0ng-passw0rd"))
    settings = client.app[SETTINGS]
    tag = uuid.uuid4().hex[:6]
    async with client.app[DB].write() as s:
        users = [
            User(
                email=f"{role}{i}-{tag}@example.com",
                password_hash=_HASH[0],
                full_name=f"Quick {role} {i}",
                role=Role(role),
                domains=[],
                skills=[],
                interests=[],
                preferences={},
                email_verified_at=utcnow(),
            )
            for i in range(n)
        ]
        s.add_all(users)
        await s.flush()
        rows = [(u.id, u.email) for u in users]
    out = []
    for uid, email in rows:
        token, _ = issue_access_token(settings.jwt_secret, user_id=uid, role=role, version=0, ttl_seconds=3600)
        out.append(ApiUser(client, uid, email, "Str0ng-passw0rd", role, token))
    return out


async def set_platform(client: TestClient, **values: Any) -> None:
    from api.services.settings_store import PlatformSettingsUpdate, update

    await update(client.app[DB], None, PlatformSettingsUpdate(**values))  # type: ignore[arg-type]


async def shift_start(client: TestClient, session_id: int, starts_at: datetime) -> None:
    """Time travel: the session and the terms its learners booked both start at ``starts_at``
    (e.g. into the refund window or the past); not a mentor's move (docs/money.md)."""
    from sqlalchemy import update

    from api.models import Booking, Session

    async with client.app[DB].write() as s:
        await s.execute(update(Session).where(Session.id == session_id).values(starts_at=starts_at))
        await s.execute(update(Booking).where(Booking.session_id == session_id).values(booked_starts_at=starts_at))


async def trial_balance(client: TestClient) -> dict[str, Any]:
    from api.services.money.ledger import trial_balance as tb

    async with client.app[DB].read() as s:
        return await tb(s)


async def confirm_proposal(user: Any, request_id: int, **override: Any) -> Any:
    """POST the confirm of request ``request_id`` as its page does: bound to the proposal the
    user sees now (price, start, mentor), with ``override`` for a stale or forged view."""
    got = await (await user.get(f"/api/requests/{request_id}")).json()
    p = (got.get("proposal") if isinstance(got, dict) else None) or {}
    body = {
        "price_cents": p.get("price_cents", 0),
        "starts_at": p.get("starts_at", "2030-01-01T00:00:00+00:00"),
        "mentor_id": (p.get("mentor") or {}).get("id", 1),
    } | override
    return await user.post(f"/api/requests/{request_id}/proposal/confirm", json=body)
