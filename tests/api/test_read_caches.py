"""Read caches (api.cache): served from memory, yet never stale after a write commits.

Seat counts, ratings and mentor cards change at the next read after the write;
a token stops working at the next request after logout or deactivation even
though it was cached a moment before; a write that rolls back forgets nothing;
a process whose broker cannot hear other processes does not use its caches.
"""

from __future__ import annotations

import asyncio
import traceback

from sqlalchemy import update

from api.cache import ReadCache, ReadCaches
from api.keys import DB
from api.models import Session
from tests.api.market import book, published, quick_users


async def test_browse_and_detail_show_exact_seats_right_after_a_booking(client, learner, mentor):
    pub = await published(mentor, capacity=3)
    sid = pub["id"]

    async def seats() -> tuple[int, int, bool]:
        page = await (await learner.get("/api/sessions", params={"page_size": 100})).json()
        listed = next(s for s in page["items"] if s["id"] == sid)
        detail = await (await learner.get(f"/api/sessions/{sid}")).json()
        return listed["seats_left"], detail["seats_left"], detail["booked"]

    assert await seats() == (3, 3, False)
    assert await seats() == (3, 3, False)  # now from the caches
    caches = client.app[DB].caches.stats()
    assert caches["catalog.pages"]["hits"] >= 1 and caches["catalog.details"]["hits"] >= 1
    assert (await book(learner, sid)).status == 201
    assert await seats() == (2, 2, True)
    (other,) = await quick_users(client, 1)
    assert (await book(other, sid)).status == 201
    assert await seats() == (1, 1, True)


async def test_detail_is_per_viewer_from_a_shared_entry(client, learner, mentor):
    pub = await published(mentor)
    assert (await book(learner, pub["id"])).status == 201
    (other,) = await quick_users(client, 1)
    mine = await (await learner.get(f"/api/sessions/{pub['id']}")).json()
    theirs = await (await other.get(f"/api/sessions/{pub['id']}")).json()
    owner = await (await mentor.get(f"/api/sessions/{pub['id']}")).json()
    anonymous = await (await client.get(f"/api/sessions/{pub['id']}")).json()
    assert mine["booked"] is True and mine["booking_id"] is not None and mine["is_owner"] is False
    assert theirs["booked"] is False and theirs["booking_id"] is None
    assert owner["is_owner"] is True and anonymous["booked"] is False and anonymous["is_owner"] is False
    assert {k: v for k, v in mine.items() if k not in ("booked", "booking_id")} == {
        k: v for k, v in theirs.items() if k not in ("booked", "booking_id")
    }


async def test_draft_stays_hidden_when_its_detail_is_cached(client, learner, mentor):
    resp = await mentor.post(
        "/api/sessions", json={"title": "Draft", "domain": "Programming", "starts_at": "2031-01-01T10:00:00+00:00"}
    )
    draft = await resp.json()
    assert (await mentor.get(f"/api/sessions/{draft['id']}")).status == 200  # fills the cache
    assert (await learner.get(f"/api/sessions/{draft['id']}")).status == 404
    assert (await client.get(f"/api/sessions/{draft['id']}")).status == 404


async def test_mentor_card_and_edits_show_at_the_next_read(client, learner, mentor):
    pub = await published(mentor)
    before = await (await learner.get(f"/api/sessions/{pub['id']}")).json()
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"title": "Renamed class"})
    assert resp.status == 200, await resp.text()
    resp = await mentor.post(f"/api/users/{mentor.id}/update", json={"full_name": "Grace Renamed"})
    assert resp.status == 200, await resp.text()
    after = await (await learner.get(f"/api/sessions/{pub['id']}")).json()
    assert before["title"] != "Renamed class"
    assert after["title"] == "Renamed class" and after["mentor"]["full_name"] == "Grace Renamed"


async def test_a_cached_token_dies_at_the_next_request_after_logout(client, learner):
    for _ in range(3):  # the token is now cached
        assert (await learner.get("/api/users/me")).status == 200
    assert client.app[DB].caches.stats()["auth"]["hits"] >= 1
    assert (await learner.post("/api/auth/logout")).status == 200
    assert (await learner.get("/api/users/me")).status == 401
    assert (await learner.get("/api/notifications")).status == 401


async def test_a_cached_token_dies_at_the_next_request_after_deactivation(client, learner, admin):
    assert (await learner.get("/api/users/me")).status == 200
    assert (await learner.get("/api/users/me")).status == 200
    assert (await admin.post(f"/api/users/{learner.id}/deactivate")).status == 200
    assert (await learner.get("/api/users/me")).status == 401


async def test_commit_invalidates_and_rollback_does_not(client, mentor):
    pub = await published(mentor)
    db = client.app[DB]
    cache = db.caches.cache("probe", ("sessions",))
    cache.put("k", 1, cache.token())
    try:
        async with db.write() as s:
            (await s.get(Session, pub["id"])).title = "rolled back"  # type: ignore[union-attr]
            await s.flush()
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert cache.get("k") == 1
    async with db.write() as s:
        (await s.get(Session, pub["id"])).title = "committed"  # type: ignore[union-attr]
    assert cache.get("k") is None


def test_a_read_older_than_a_commit_is_not_kept() -> None:
    caches = ReadCaches()
    cache: ReadCache[int] = caches.cache("c", ("sessions",))
    stamp = cache.token()  # a reader starts ...
    caches.invalidate({"sessions"})  # ... a write commits meanwhile ...
    cache.put("k", 1, stamp)  # ... and what it read is not kept
    assert cache.get("k") is None
    caches.invalidate({"users"})  # another table: no effect
    cache.put("k", 2, cache.token())
    caches.invalidate({"users"})
    assert cache.get("k") == 2
    caches.invalidate({"*"})
    assert cache.get("k") is None


async def test_caches_step_aside_while_the_broker_cannot_hear_other_processes() -> None:
    class Broker:
        listening = True
        epoch = 1  # the broker's count of healthy periods (api.broker.RedisBroker)

    caches = ReadCaches()
    broker = Broker()
    await caches.attach(broker)
    cache: ReadCache[int] = caches.cache("c", ("sessions",))
    cache.put("k", 1, cache.token())
    broker.listening = False
    assert cache.get("k") is None
    cache.put("k", 2, cache.token())
    broker.listening, broker.epoch = True, 2  # back: what was cached before the outage is gone
    assert cache.get("k") is None
    cache.put("k", 3, cache.token())
    assert cache.get("k") == 3


async def test_concurrent_misses_share_one_load_and_a_later_reader_does_not_join_a_stale_one() -> None:
    caches = ReadCaches()
    cache: ReadCache[int] = caches.cache("c", ("sessions",))
    calls: list[int] = []
    release = asyncio.Event()

    async def load() -> int:
        calls.append(1)
        n = len(calls)
        await release.wait()
        return n

    first = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    caches.invalidate({"sessions"})  # a write commits while the first load runs
    late = asyncio.ensure_future(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*first) == [1] * 5  # one load for the five
    assert await late == 2  # its own load, begun after the commit
    assert cache.get("k") == 2  # and only the fresh one was kept


async def test_known_refusals_do_not_queue_for_the_writer(client, learner, mentor, monkeypatch):
    pub = await published(mentor, capacity=1)
    assert (await book(learner, pub["id"])).status == 201
    (other,) = await quick_users(client, 1)
    await other.get(f"/api/sessions/{pub['id']}")  # the detail is cached, seats_left 0
    db = client.app[DB]
    writes: list[int] = []
    real_write = db.write

    def counting_write():  # type: ignore[no-untyped-def]
        # only the requests' own writes: background loops (the mail sender delivering the first
        # booking's confirmation) write whenever they run and are not what this test is about
        if any("/api/routes/" in frame.filename for frame in traceback.extract_stack()):
            writes.append(1)
        return real_write()

    monkeypatch.setattr(db, "write", counting_write)
    resp = await book(other, pub["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "sold_out"
    resp = await book(learner, pub["id"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_booked"
    assert writes == []


async def test_a_booking_refreshes_seats_without_rebuilding_cached_pages(client, learner, mentor):
    pub = await published(mentor, capacity=4)
    params = {"page_size": 100}
    await learner.get("/api/sessions", params=params)
    stats = client.app[DB].caches.stats
    built = stats()["catalog.pages"]["misses"]
    assert (await book(learner, pub["id"])).status == 201
    page = await (await learner.get("/api/sessions", params=params)).json()
    assert next(s for s in page["items"] if s["id"] == pub["id"])["seats_left"] == 3
    assert stats()["catalog.pages"]["misses"] == built  # the page stayed, its seats were refreshed
    resp = await mentor.post(f"/api/sessions/{pub['id']}/update", json={"title": "New title"})
    assert resp.status == 200
    page = await (await learner.get("/api/sessions", params=params)).json()
    assert next(s for s in page["items"] if s["id"] == pub["id"])["title"] == "New title"
    assert stats()["catalog.pages"]["misses"] == built + 1  # any other change rebuilds it


async def test_writes_name_the_columns_they_change(client, mentor):
    pub = await published(mentor)
    db = client.app[DB]
    pages = db.caches.cache("probe.pages", ("sessions",), ignores=("sessions.seats_taken",))
    seats = db.caches.cache("probe.seats", ("sessions",))
    for c in (pages, seats):
        c.put("k", 1, c.token())
    async with db.write() as s:
        await s.execute(update(Session).where(Session.id == pub["id"]).values(seats_taken=Session.seats_taken + 1))
    assert pages.get("k") == 1 and seats.get("k") is None
    async with db.write() as s:
        (await s.get(Session, pub["id"])).seats_taken = 0  # type: ignore[union-attr]
    assert pages.get("k") == 1
    async with db.write() as s:
        (await s.get(Session, pub["id"])).title = "Renamed"  # type: ignore[union-attr]
    assert pages.get("k") is None


async def test_a_booking_forgets_only_its_learners_bookings(client, learner, mentor):
    one, two = await published(mentor), await published(mentor)
    (other,) = await quick_users(client, 1)
    for who in (learner, other):
        await who.get(f"/api/sessions/{one['id']}")  # both learners' bookings are cached
    cache = client.app[DB].caches.cache("bookings.active", ("bookings",))
    assert cache.get(learner.id) == {} and cache.get(other.id) == {}
    assert (await book(learner, one["id"])).status == 201
    assert cache.get(learner.id) is None and cache.get(other.id) == {}
    mine = await (await learner.get(f"/api/sessions/{one['id']}")).json()
    assert mine["booked"] is True
    resp = await learner.post(f"/api/bookings/{mine['booking_id']}/cancel")
    assert resp.status == 200, await resp.text()
    assert (await (await learner.get(f"/api/sessions/{one['id']}")).json())["booked"] is False
    assert (await book(other, two["id"])).status == 201
    assert (await (await other.get(f"/api/sessions/{two['id']}")).json())["booked"] is True


async def test_notifications_show_at_the_next_read_and_marking_read_counts(client, learner, mentor):
    pub = await published(mentor)
    before = await (await mentor.get("/api/notifications")).json()
    assert (await (await mentor.get("/api/notifications")).json()) == before  # cached
    assert (await book(learner, pub["id"])).status == 201
    after = await (await mentor.get("/api/notifications")).json()
    assert after["total"] == before["total"] + 1 and after["unread"] == before["unread"] + 1
    assert after["items"][0]["kind"] == "booking.created"
    resp = await mentor.post("/api/notifications/read", json={})
    assert resp.status == 200 and (await resp.json())["unread"] == 0
    assert (await (await mentor.get("/api/notifications")).json())["unread"] == 0
