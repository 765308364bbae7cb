"""Notifications: list with unread count, unread filter, mark read (own only)."""

from __future__ import annotations

from api.keys import BROKER, DB
from api.services import notifications


async def _notify(client, user_id, title="Hello"):
    return await notifications.notify(client.app[DB], client.app[BROKER], user_id, "account", title)


async def test_list_and_unread_count(client, learner, mentor):
    for i in range(3):
        await _notify(client, learner.id, f"n{i}")
    await _notify(client, mentor.id, "not yours")
    resp = await learner.get("/api/notifications")
    assert resp.status == 200
    data = await resp.json()
    assert data["total"] == 3 and data["unread"] == 3
    assert [n["title"] for n in data["items"]] == ["n2", "n1", "n0"]
    assert all(not n["read"] for n in data["items"])


async def test_mark_by_id_and_all(client, learner):
    a = await _notify(client, learner.id, "a")
    await _notify(client, learner.id, "b")
    resp = await learner.post("/api/notifications/read", json={"ids": [a["id"]]})
    assert resp.status == 200
    assert await resp.json() == {"marked": 1, "unread": 1}
    unread = await (await learner.get("/api/notifications?unread=true")).json()
    assert [n["title"] for n in unread["items"]] == ["b"] and unread["total"] == 1
    resp = await learner.post("/api/notifications/read", json={})
    assert (await resp.json())["unread"] == 0
    data = await (await learner.get("/api/notifications")).json()
    assert data["unread"] == 0 and all(n["read"] for n in data["items"])


async def test_cannot_mark_someone_elses(client, learner, mentor):
    other = await _notify(client, mentor.id, "mentor's")
    resp = await learner.post("/api/notifications/read", json={"ids": [other["id"]]})
    assert resp.status == 200 and (await resp.json())["marked"] == 0
    data = await (await mentor.get("/api/notifications")).json()
    assert data["unread"] == 1


async def test_refusals(client, learner):
    assert (await client.get("/api/notifications")).status == 401
    assert (await client.post("/api/notifications/read", json={})).status == 401
    assert (await learner.post("/api/notifications/read", json={"ids": "x"})).status == 400
    assert (await learner.post("/api/notifications/read", json={"bogus": 1})).status == 400
    assert (await learner.get("/api/notifications?page=0")).status == 400
