"""PeerLearn's REST API as the SFU benchmarks use it: accounts, rooms with bookings,
and the engine counters of every server process (/metrics)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import aiohttp

PASSWORD = "bench-Passw0rd-1"


async def api_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str = "",
    body: Any = None,
    ok: tuple[int, ...] = (200, 201),
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        if r.status not in ok:
            raise RuntimeError(f"{method} {url}: {r.status} {await r.text()}")
        return await r.json()


async def make_rooms(
    http: aiohttp.ClientSession, base: str, rooms: int, participants: int, run_id: str, first_index: int = 0
) -> list[dict[str, Any]]:
    """Per room: a mentor and learners (registered + signed in), a session starting in ~5 min, bookings."""
    sem = asyncio.Semaphore(4)

    async def account(email: str, role: str) -> str:
        async with sem:
            await api_json(
                http,
                "POST",
                base + "/api/auth/register",
                body={
                    "email": email,
                    "password": PASSWORD,
                    "full_name": email.split("@")[0].replace(".", " "),
                    "role": role,
                },
                ok=(201, 409),
            )
            out = await api_json(http, "POST", base + "/api/auth/login", body={"email": email, "password": PASSWORD})
            return str(out["access_token"])

    async def room(i: int) -> dict[str, Any]:
        mentor = await account(f"bench-{run_id}-r{i}-mentor@example.com", "mentor")
        starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0).isoformat()
        sess = await api_json(
            http,
            "POST",
            base + "/api/sessions",
            mentor,
            {
                "title": f"Load test room {i}",
                "domain": "Programming",
                "capacity": max(participants - 1, 1),
                "starts_at": starts,
                "duration_min": 60,
                "price_cents": 0,
            },
        )
        await api_json(http, "POST", f"{base}/api/sessions/{sess['id']}/publish", mentor)
        learners = await asyncio.gather(
            *[account(f"bench-{run_id}-r{i}-l{k}@example.com", "learner") for k in range(participants - 1)]
        )
        for tok in learners:
            await api_json(http, "POST", base + "/api/bookings/create", tok, {"session_id": sess["id"]})
        return {"session_id": sess["id"], "tokens": [mentor, *learners]}

    return list(await asyncio.gather(*[room(i) for i in range(first_index, first_index + rooms)]))


async def scrape_forwarded(http: aiohttp.ClientSession, urls: list[str]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for url in urls:
        try:
            async with http.get(url + "/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            continue
        for line in text.splitlines():
            if line.startswith("peerlearn_sfu_") and not line.startswith("#"):
                name, _, value = line.partition(" ")
                out[name.replace("peerlearn_sfu_", "")] += float(value)
    return dict(out)


async def metric_urls(base: str, redis_url: Optional[str]) -> list[str]:
    """Every process's own /metrics: the internal URLs registered in Redis, else the public one."""
    if not redis_url:
        return [base]
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    urls = []
    try:
        async for key in client.scan_iter(match="pl:node:*"):
            raw = await client.get(key)
            if raw:
                url = json.loads(raw).get("url")
                if url:
                    urls.append(url)
    finally:
        await client.aclose()
    return urls or [base]
