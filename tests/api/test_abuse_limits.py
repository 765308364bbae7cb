"""Issue 22, the low findings: what a throwaway account, an odd date, a proxy or an admin's
typo could do, and the rule that now refuses it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from api.app import create_app
from api.keys import DB, METRICS
from api.models import Notification, Request, Setting, utcnow
from api.schemas.dates import parse_stored, representable
from api.services.requests import notified
from api.services.settings_store import PlatformSettings, PlatformSettingsUpdate
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


# ---------------------------------------------------------------- dates


UNREPRESENTABLE = ["9999-12-31", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01", "1899-12-31"]


@pytest.mark.parametrize("value", UNREPRESENTABLE)
@pytest.mark.parametrize("param", ["date_from", "date_to"])
async def test_browse_dates_out_of_range_are_400(client, param, value) -> None:
    resp = await client.get("/api/sessions", params={param: value})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == "validation_error" and param in body["error"]["fields"]


async def test_browse_dates_in_range_still_work(client) -> None:
    for params in ({"date_to": "8999-12-31"}, {"date_from": "1900-01-01T00:00:00Z"}, {"date_from": "2030-01-31"}):
        assert (await client.get("/api/sessions", params=params)).status == 200


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "9999-12-31T23:00:00", "0001-01-01T00:00:00+14:00"])
async def test_session_starts_at_out_of_range_is_400(client, mentor, value) -> None:
    body = {"title": "T", "domain": "Programming", "starts_at": value, "timezone": "Pacific/Kiritimati"}
    resp = await mentor.post("/api/sessions", json=body)
    assert resp.status == 400, await resp.text()
    assert "starts_at" in (await resp.json())["error"]["fields"]


async def test_request_times_out_of_range_are_400(client, learner, mentor) -> None:
    resp = await learner.post("/api/requests/create", json=_request_body(preferred_times=["9999-12-31T23:59:59-14:00"]))
    assert resp.status == 400, await resp.text()
    assert "preferred_times.0" in (await resp.json())["error"]["fields"]
    rid = (await (await learner.post("/api/requests/create", json=_request_body())).json())["id"]
    resp = await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": "9999-12-31T23:59:59-14:00"})
    assert resp.status == 400, await resp.text()
    assert "starts_at" in (await resp.json())["error"]["fields"]


async def test_recording_filters_out_of_range_are_400(client, admin) -> None:
    resp = await admin.get("/api/recordings", params={"date_to": "9999-12-31T23:59:59-14:00"})
    assert resp.status == 400, await resp.text()


def test_representable_and_stored_values() -> None:
    assert representable(datetime(2030, 1, 1, tzinfo=timezone.utc)).year == 2030
    for bad in (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))), datetime(1, 1, 1)):
        with pytest.raises(ValueError):
            representable(bad)
    assert parse_stored("2030-01-01T10:00:00") == datetime(2030, 1, 1, 10, tzinfo=timezone.utc)
    assert parse_stored("9999-12-31T23:59:59-14:00") is None
    assert parse_stored("not a date") is None


# ---------------------------------------------------------------- /metrics behind a proxy

PROXY_HEADERS = [
    {"X-Real-IP": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Forwarded-Host": "peerlearn.example"},
    {"X-Forwarded-Proto": "https"},
    {"X-Forwarded-Port": "443"},
    {"x-forwarded-server": "edge-1"},
    {"Via": "1.1 edge"},
    {"True-Client-IP": "203.0.113.9"},
    {"CF-Connecting-IP": "203.0.113.9"},
]


@pytest.mark.parametrize("headers", PROXY_HEADERS, ids=lambda h: next(iter(h)))
async def test_metrics_refused_whenever_any_forwarding_header_is_present(client, headers) -> None:
    assert (await client.get("/metrics")).status == 200  # direct, from loopback
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 403, headers
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_trusted_proxy_with_only_x_real_ip_names_the_client(aiohttp_client, settings) -> None:
    client = await aiohttp_client(create_app(replace(settings, trusted_proxies="127.0.0.1", auth_rate_limit=2)))
    statuses = []
    for i in range(3):
        r = await client.post(
            "/api/auth/password-reset", json={"email": f"x{i}@example.com"}, headers={"X-Real-IP": f"198.51.100.{i}"}
        )
        statuses.append(r.status)
    assert statuses == [200, 200, 200]  # three clients, not one proxy address over its limit
    same = [
        (
            await client.post(
                "/api/auth/password-reset", json={"email": f"y{i}@example.com"}, headers={"X-Real-IP": "198.51.100.77"}
            )
        ).status
        for i in range(3)
    ]
    assert same == [200, 200, 429]


# ---------------------------------------------------------------- admin settings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_payout_cents", 10**30),
        ("min_payout_cents", 10_000_001),
        ("min_payout_cents", -1),
        ("platform_fee_percent", 1e300),
        ("refund_window_hours", 10**9),
        ("earnings_hold_hours", -5),
        ("max_capacity", 0),
    ],
)
async def test_admin_settings_out_of_bounds_are_400(client, admin, field, value) -> None:
    before = await (await admin.get("/api/admin/settings")).json()
    resp = await admin.post("/api/admin/settings", json={field: value})
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "validation_error" and field in error["fields"]
    assert await (await admin.get("/api/admin/settings")).json() == before


async def test_admin_settings_infinite_or_nan_fee_is_400(client, admin) -> None:
    for raw in ('{"platform_fee_percent": Infinity}', '{"platform_fee_percent": NaN}'):
        resp = await admin.post("/api/admin/settings", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 400, raw


async def test_admin_settings_at_their_bounds_are_taken(client, admin) -> None:
    resp = await admin.post("/api/admin/settings", json={"min_payout_cents": 10_000_000, "platform_fee_percent": 50})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["min_payout_cents"] == 10_000_000


def test_every_numeric_admin_setting_has_both_bounds() -> None:
    properties = PlatformSettingsUpdate.model_json_schema()["properties"]
    numeric = {name: p["anyOf"][0] for name, p in properties.items() if p["anyOf"][0]["type"] in ("integer", "number")}
    assert "min_payout_cents" in numeric and "platform_fee_percent" in numeric
    for name, schema in numeric.items():
        assert "minimum" in schema and "maximum" in schema, name


async def test_a_stored_value_out_of_bounds_falls_back_to_the_default(client, admin) -> None:
    async with client.app[DB].write() as s:
        s.add(Setting(key="min_payout_cents", value={"v": 10**30}))
        s.add(Setting(key="refund_window_hours", value={"v": 12}))
    client.app[DB].caches.invalidate(("settings",))
    values = await (await admin.get("/api/admin/settings")).json()
    assert values["min_payout_cents"] == PlatformSettings().min_payout_cents
    assert values["refund_window_hours"] == 12


# ---------------------------------------------------------------- request metrics


def _counted(client, route: str, status: int, method: str = "GET") -> float:
    value = client.app[METRICS].registry.get_sample_value(
        "peerlearn_http_requests_total", {"method": method, "route": route, "status": str(status)}
    )
    return value or 0.0


async def test_metrics_count_each_refusal_by_its_real_status(client, learner, mentor) -> None:
    sid_route = "/api/sessions/{id}"
    expected = [
        # (request, route label, the status the client gets)
        (lambda: client.get("/api/sessions", params={"date_to": "9999-12-31"}), "/api/sessions", 400, "GET"),
        (lambda: client.get("/api/users/me"), "/api/users/me", 401, "GET"),
        (lambda: learner.post("/api/sessions", json={}), "/api/sessions", 403, "POST"),
        (lambda: learner.get("/api/sessions/999999"), sid_route, 404, "GET"),
        (lambda: learner.post("/api/requests/999999/cancel"), "/api/requests/{id}/cancel", 404, "POST"),
    ]
    for call, route, status, method in expected:
        before = {s: _counted(client, route, s, method) for s in (status, 500)}
        resp = await call()
        assert resp.status == status, (route, await resp.text())
        assert _counted(client, route, status, method) == before[status] + 1, (route, status)
        assert _counted(client, route, 500, method) == before[500], route


async def test_metrics_count_a_domain_conflict_as_409(client, learner, mentor) -> None:
    rid = (await (await learner.post("/api/requests/create", json=_request_body())).json())["id"]
    assert (await learner.post(f"/api/requests/{rid}/cancel")).status == 200
    again = await learner.post(f"/api/requests/{rid}/cancel")
    assert again.status == 409
    assert _counted(client, "/api/requests/{id}/cancel", 409, "POST") == 1
    assert _counted(client, "/api/requests/{id}/cancel", 500, "POST") == 0


async def test_metrics_count_an_unhandled_error_as_500(client, learner, monkeypatch) -> None:
    from api.services import requests as svc

    async def boom(*args, **kwargs):
        raise RuntimeError("bad state")

    monkeypatch.setattr(svc, "get", boom)
    resp = await learner.get("/api/requests/1")
    assert resp.status == 500
    assert _counted(client, "/api/requests/{id}", 500) == 1


async def test_naive_recording_filters_are_read_as_utc(client, admin) -> None:
    """schemathesis found it on a fresh install: a naive filter reached a UTC column (500)."""
    resp = await admin.get("/api/recordings", params={"date_from": "2030-01-01T00:00:00", "date_to": "2031-01-01"})
    assert resp.status == 200, await resp.text()


async def test_a_form_mistake_does_not_use_up_the_allowance(aiohttp_client, settings) -> None:
    client = await aiohttp_client(create_app(replace(settings, request_rate_burst=1, request_rate_daily=1)))
    learner = await signup(client, "learner")
    past = (utcnow() - timedelta(days=1)).isoformat()
    assert (await learner.post("/api/requests/create", json=_request_body(preferred_times=[past]))).status == 400
    assert (await learner.post("/api/requests/create", json=_request_body())).status == 201
    assert (await learner.post("/api/requests/create", json=_request_body())).status == 429
