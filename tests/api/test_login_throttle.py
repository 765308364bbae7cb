"""Issue 14: bad passwords from one place cannot lock the account's owner out elsewhere;
repeated failures from the same place wait longer and longer."""

from __future__ import annotations

import time
from dataclasses import replace

from api import login_throttle
from api.app import create_app
from api.login_throttle import FREE_FAILURES, IP_FACTOR, MAX_DELAY, delay_after
from tests.conftest import PASSWORD, signup


def from_ip(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def _client(aiohttp_client, settings, limit: int = 10):
    return await aiohttp_client(create_app(replace(settings, auth_rate_limit=limit, trusted_proxies="127.0.0.1")))


def test_delays_grow_and_are_capped() -> None:
    assert [delay_after(n) for n in range(FREE_FAILURES)] == [0] * FREE_FAILURES
    delays = [delay_after(n) for n in range(FREE_FAILURES, FREE_FAILURES + 6)]
    assert delays == [2, 4, 8, 16, 32, 64]
    assert delay_after(100) == MAX_DELAY


async def test_strangers_failures_never_lock_the_owner_out(aiohttp_client, settings) -> None:
    client = await _client(aiohttp_client, settings)
    victim = await signup(client, "learner")
    statuses = []
    for _ in range(25):
        resp = await client.post(
            "/api/auth/login",
            headers=from_ip("203.0.113.66"),
            json={"email": victim.email, "password": "Wrong-passw0rd"},
        )
        statuses.append(resp.status)
    assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES and set(statuses[FREE_FAILURES:]) == {429}
    # The owner, from their own address, signs in at once.
    own = await client.post(
        "/api/auth/login", headers=from_ip("198.51.100.7"), json={"email": victim.email, "password": PASSWORD}
    )
    assert own.status == 200


async def test_failures_from_one_place_wait_longer_each_time(aiohttp_client, settings, monkeypatch) -> None:
    client = await _client(aiohttp_client, settings)
    user = await signup(client, "learner")
    clock = [time.time()]  # the limiter's and the throttle's clock, moved by hand
    monkeypatch.setattr(login_throttle.time, "time", lambda: clock[0])

    async def attempt(password: str = "Wrong-passw0rd"):
        return await client.post(
            "/api/auth/login", headers=from_ip("192.0.2.1"), json={"email": user.email, "password": password}
        )

    for _ in range(FREE_FAILURES):
        assert (await attempt()).status == 401
    waits = []
    for _ in range(3):
        blocked = await attempt()
        assert blocked.status == 429 and (await blocked.json())["error"]["code"] == "rate_limited"
        waits.append(int(blocked.headers["Retry-After"]))
        clock[0] += waits[-1] + 0.5  # wait it out, then fail once more
        assert (await attempt()).status == 401
    assert waits[0] <= 2 and waits[0] < waits[1] < waits[2]
    clock[0] += MAX_DELAY + 1
    assert (await attempt(PASSWORD)).status == 200
    # A success clears the pair's record: the next typo is not delayed.
    assert (await attempt()).status == 401


async def test_one_ip_spraying_many_accounts_is_limited(aiohttp_client, settings) -> None:
    client = await _client(aiohttp_client, settings, limit=2)
    statuses = []
    for i in range(2 * IP_FACTOR + 3):
        resp = await client.post(
            "/api/auth/login",
            headers=from_ip("203.0.113.5"),
            json={"email": f"user{i}@example.com", "password": "Wrong-passw0rd"},
        )
        statuses.append(resp.status)
    assert statuses[: 2 * IP_FACTOR] == [401] * (2 * IP_FACTOR) and statuses[2 * IP_FACTOR :] == [429] * 3
    other = await client.post(
        "/api/auth/login",
        headers=from_ip("203.0.113.6"),
        json={"email": "user0@example.com", "password": "Wrong-passw0rd"},
    )
    assert other.status == 401
