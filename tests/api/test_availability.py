"""Availability rules and free slots through the API: the contract of issue 26, its
validation (every bad zone, time, range or date is a 400 in the JSON error shape),
and slots that step around the mentor's sessions, notice, horizon and days off."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.models import SessionStatus, utcnow
from tests.api.helpers_marketplace import make_session

BERLIN = ZoneInfo("Europe/Berlin")


def every_day(start: str = "09:00", end: str = "12:00") -> list[dict[str, object]]:
    return [{"weekday": d, "start": start, "end": end} for d in range(7)]


def rules(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "time_zone": "Europe/Berlin",
        "weekly": every_day(),
        "slot_minutes": 60,
        "price_cents": 4000,
        "currency": "USD",
        "buffer_minutes": 0,
        "min_notice_hours": 12,
        "max_days_ahead": 60,
        "days_off": [],
    }
    body.update(over)
    return body


async def put_rules(mentor, **over: object) -> dict[str, object]:
    resp = await mentor.request("PUT", "/api/mentors/me/availability", json=rules(**over))
    assert resp.status == 200, await resp.text()
    return await resp.json()


def day_window(days_ahead: int) -> tuple[date, dict[str, str]]:
    """A whole Berlin day ``days_ahead`` from today, as the slots query of that day."""
    day = datetime.now(BERLIN).date() + timedelta(days=days_ahead)
    start = datetime.combine(day, datetime.min.time(), tzinfo=BERLIN)
    end = start + timedelta(days=1)
    return day, {"from": start.isoformat(), "to": end.isoformat()}


async def slots_of(client, mentor_id: int, params: dict[str, str]) -> list[dict[str, object]]:
    resp = await client.get(f"/api/mentors/{mentor_id}/slots", params=params)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


def berlin_hours(items) -> list[str]:
    return [datetime.fromisoformat(i["starts_at"]).astimezone(BERLIN).strftime("%H:%M") for i in items]


async def test_put_get_and_public_rules(client, mentor):
    stored = await put_rules(mentor, days_off=["2027-01-01"], buffer_minutes=10)
    assert stored["configured"] is True and stored["time_zone"] == "Europe/Berlin"
    assert stored["weekly"][0] == {"weekday": 0, "start": "09:00", "end": "12:00"}
    assert stored["days_off"] == ["2027-01-01"] and stored["buffer_minutes"] == 10
    mine = await (await mentor.get("/api/mentors/me/availability")).json()
    assert mine == stored
    public = await client.get(f"/api/mentors/{mentor.id}/availability")
    assert public.status == 200 and await public.json() == stored


async def test_a_mentor_without_rules_offers_nothing(client, mentor):
    mine = await (await mentor.get("/api/mentors/me/availability")).json()
    assert mine["configured"] is False and mine["weekly"] == []
    _, params = day_window(3)
    assert await slots_of(client, mentor.id, params) == []


async def test_only_mentors_set_rules_and_only_mentors_have_slots(client, learner, mentor):
    resp = await learner.request("PUT", "/api/mentors/me/availability", json=rules())
    assert resp.status == 403
    anon = await client.request("PUT", "/api/mentors/me/availability", json=rules())
    assert anon.status == 401
    _, params = day_window(3)
    assert (await client.get(f"/api/mentors/{learner.id}/slots", params=params)).status == 404
    assert (await client.get(f"/api/mentors/{learner.id}/availability")).status == 404


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"weekly": [{"weekday": 0, "start": "12:00", "end": "09:00"}]}, "weekly.0"),
        ({"weekly": [{"weekday": 0, "start": "25:00", "end": "26:00"}]}, "weekly.0.start"),
        ({"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "weekly.0.weekday"),
        (
            {
                "weekly": [
                    {"weekday": 2, "start": "09:00", "end": "12:00"},
                    {"weekday": 2, "start": "11:00", "end": "13:00"},
                ]
            },
            "weekly",
        ),
        ({"days_off": ["2027-02-30"]}, "days_off.0"),
        ({"slot_minutes": 50}, "slot_minutes"),
    ],
)
async def test_bad_rules_are_400_with_the_field(client, mentor, over, field):
    resp = await mentor.request("PUT", "/api/mentors/me/availability", json=rules(**over))
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert set(body["error"]) == {"code", "message", "fields"}
    assert field in body["error"]["fields"], body


async def test_overlapping_ranges_have_their_own_code(client, mentor):
    weekly = [{"weekday": 2, "start": "09:00", "end": "12:00"}, {"weekday": 2, "start": "11:30", "end": "13:00"}]
    resp = await mentor.request("PUT", "/api/mentors/me/availability", json=rules(weekly=weekly))
    assert (await resp.json())["error"]["code"] == "overlapping_ranges"
    touching = [{"weekday": 2, "start": "09:00", "end": "12:00"}, {"weekday": 2, "start": "12:00", "end": "24:00"}]
    assert (await mentor.request("PUT", "/api/mentors/me/availability", json=rules(weekly=touching))).status == 200


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01T00:00:00+05:00", "to": "0001-01-02T00:00:00+05:00"},
        {"from": "9999-12-31T23:00:00-05:00", "to": "9999-12-31T23:59:00-05:00"},
        {"from": "2027-01-01", "to": "2027-01-02"},
        {"from": "0", "to": "1"},
        {"from": "2027-01-02T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
        {"from": "2027-01-01T00:00:00Z", "to": "2028-01-01T00:00:00Z"},
        {"from": "2027-13-01T00:00:00Z", "to": "2027-13-02T00:00:00Z"},
        {"to": "2027-01-01T00:00:00Z"},
    ],
)
async def test_dates_the_system_cannot_use_are_400(client, mentor, params):
    await put_rules(mentor)
    resp = await client.get(f"/api/mentors/{mentor.id}/slots", params=params)
    assert resp.status == 400, await resp.text()
    assert "error" in await resp.json()


async def test_slots_follow_the_wall_clock_rules(client, mentor):
    await put_rules(mentor)
    day, params = day_window(5)
    items = await slots_of(client, mentor.id, params)
    assert berlin_hours(items) == ["09:00", "10:00", "11:00"]
    first = items[0]
    assert first["price_cents"] == 4000 and first["currency"] == "USD"
    start, end = datetime.fromisoformat(first["starts_at"]), datetime.fromisoformat(first["ends_at"])
    assert start.utcoffset() is not None and end - start == timedelta(hours=1)
    assert start.astimezone(BERLIN).date() == day


async def test_slots_step_around_sessions_with_the_buffer(client, mentor):
    await put_rules(mentor, buffer_minutes=15, slot_minutes=45)
    day, params = day_window(6)
    assert berlin_hours(await slots_of(client, mentor.id, params)) == ["09:00", "10:00", "11:00"]
    # A published class at 10:30-11:00 Berlin: 10:00 (ends 10:45) and 11:00 both come within 15 min.
    at = datetime.combine(day, datetime.min.time(), tzinfo=BERLIN).replace(hour=10, minute=30)
    await make_session(client, mentor.id, starts_at=at.astimezone(UTC), duration_min=30)
    assert berlin_hours(await slots_of(client, mentor.id, params)) == ["09:00"]
    # Cancelled and draft sessions take no time.
    await make_session(client, mentor.id, starts_at=at.replace(hour=9).astimezone(UTC), status=SessionStatus.draft)
    assert berlin_hours(await slots_of(client, mentor.id, params)) == ["09:00"]


async def test_notice_horizon_and_days_off(client, mentor):
    await put_rules(mentor, weekly=every_day("00:00", "24:00"), min_notice_hours=30, max_days_ahead=3)
    now = utcnow()
    params = {"from": now.isoformat(), "to": (now + timedelta(days=5)).isoformat()}
    items = await slots_of(client, mentor.id, params)
    starts = [datetime.fromisoformat(i["starts_at"]) for i in items]
    assert starts and min(starts) >= now + timedelta(hours=30) and max(starts) <= now + timedelta(days=3)
    assert min(starts) < now + timedelta(hours=31)
    off = (now + timedelta(days=2)).astimezone(BERLIN).date()
    await put_rules(
        mentor, weekly=every_day("00:00", "24:00"), min_notice_hours=30, max_days_ahead=3, days_off=[off.isoformat()]
    )
    items = await slots_of(client, mentor.id, params)
    assert all(datetime.fromisoformat(i["starts_at"]).astimezone(BERLIN).date() != off for i in items)
    assert items


async def test_an_inactive_mentor_has_no_public_rules(client, mentor, admin):
    await put_rules(mentor)
    assert (await admin.post(f"/api/users/{mentor.id}/deactivate")).status == 200
    assert (await client.get(f"/api/mentors/{mentor.id}/availability")).status == 404
