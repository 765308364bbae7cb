"""Issue 22, the low findings: what a throwaway account, an odd date, a proxy or an admin's
typo could do, and the rule that now refuses it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from api.app import create_app
from api.keys import DB
from api.models import Notification, Request, utcnow
from api.services.requests import notified
from tests.conftest import signup


def _request_body(**kw):
    when = (utcnow() + timedelta(days=2)).isoformat()
    return {"topic": "Buy cheap followers", "domain": "Programming", "preferred_times": [when], **kw}


async def _count(client, model, *where):
    async with client.app[DB].read() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# ---------------------------------------------------------------- requests


async def test_unverified_learner_cannot_send_requests(client, mentor) -> None:
    throwaway = await signup(client, "learner", verified=False)
    resp = await throwaway.post("/api/requests/create", json=_request_body())
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "email_unverified"
    assert await _count(client, Request) == 0
    assert await _count(client, Notification, Notification.user_id == mentor.id) == 0


async def test_requests_are_limited_per_learner_burst_and_day(aiohttp_client, settings) -> None:
    client = await aiohttp_client(
        create_app(
            replace(settings, request_rate_burst=3, request_rate_burst_window_seconds=3600, request_rate_daily=5)
        )
    )
    learner = await signup(client, "learner")
    other = await signup(client, "learner")
    statuses = [(await learner.post("/api/requests/create", json=_request_body())).status for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = await learner.post("/api/requests/create", json=_request_body())
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert await _count(client, Request) == 3
    # Per learner: another learner is not held back by the first one's flood.
    assert (await other.post("/api/requests/create", json=_request_body())).status == 201


async def test_daily_allowance_holds_across_bursts(aiohttp_client, settings) -> None:
    client = await aiohttp_client(
        create_app(replace(settings, request_rate_burst=100, request_rate_burst_window_seconds=1, request_rate_daily=2))
    )
    learner = await signup(client, "learner")
    statuses = [(await learner.post("/api/requests/create", json=_request_body())).status for _ in range(3)]
    assert statuses == [201, 201, 429]


async def test_one_request_notifies_at_most_the_cap_of_mentors(aiohttp_client, settings) -> None:
    client = await aiohttp_client(create_app(replace(settings, request_max_notified_mentors=3)))
    mentors = [await signup(client, "mentor", domains=["Programming"]) for _ in range(6)]
    learner = await signup(client, "learner")
    resp = await learner.post("/api/requests/create", json=_request_body())
    assert resp.status == 201
    rid = (await resp.json())["id"]
    assert await _count(client, Notification, Notification.kind == "request.new") == 3
    # Everyone of the domain still finds it in their list: only the pings are capped.
    for m in mentors:
        items = (await (await m.get("/api/requests")).json())["items"]
        assert [r["id"] for r in items] == [rid]


def test_notified_takes_everyone_under_the_cap_and_a_sample_over_it() -> None:
    assert notified([4, 2, 9], 5) == [4, 2, 9]
    picked = notified(list(range(100)), 7)
    assert len(picked) == 7 and len(set(picked)) == 7 and set(picked) <= set(range(100))
    assert notified(list(range(10)), 0) == []
