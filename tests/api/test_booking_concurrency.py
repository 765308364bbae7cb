"""Concurrency: seats are never oversold, idempotency holds, payouts never overdraw.

Requests are fired together through the aiohttp test client with asyncio.gather;
the server handles them concurrently (SQLite and, with
PEERLEARN_TEST_DATABASE_URL, PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from api.keys import DB
from api.models import Booking, BookingStatus, Session
from tests.api.classes import after_hold, take_place
from tests.api.market import book, published, quick_users, set_platform, trial_balance


async def _statuses(responses) -> Counter:
    return Counter(r.status for r in responses)


async def _active(client, session_id: int) -> tuple[int, int]:
    async with client.app[DB].read() as s:
        n = await s.scalar(
            select(func.count(Booking.id)).where(
                Booking.session_id == session_id, Booking.status != BookingStatus.cancelled
            )
        )
        taken = await s.scalar(select(Session.seats_taken).where(Session.id == session_id))
    return int(n or 0), int(taken or 0)


async def test_100_concurrent_bookings_for_the_last_seat(client, mentor):
    pub = await published(mentor, capacity=3, price_cents=1500)
    early = await quick_users(client, 2)
    for lr in early:
        assert (await book(lr, pub["id"])).status == 201
    learners = await quick_users(client, 100)
    responses = await asyncio.gather(*(book(lr, pub["id"]) for lr in learners))
    counts = await _statuses(responses)
    codes = Counter([(await r.json())["error"]["code"] for r in responses if r.status == 409])
    print("last seat:", dict(counts), dict(codes))
    assert counts == Counter({201: 1, 409: 99})
    assert codes == Counter({"sold_out": 99})
    assert await _active(client, pub["id"]) == (3, 3)
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"] and not tb["unbalanced_journals"]


async def test_200_learners_capacity_10(client, mentor):
    await set_platform(client, max_capacity=10)
    pub = await published(mentor, capacity=10, price_cents=999)
    learners = await quick_users(client, 200)
    responses = await asyncio.gather(*(book(lr, pub["id"]) for lr in learners))
    counts = await _statuses(responses)
    print("capacity 10:", dict(counts))
    assert counts == Counter({201: 10, 409: 190})
    assert await _active(client, pub["id"]) == (10, 10)
    detail = await (await client.get(f"/api/sessions/{pub['id']}")).json()
    assert detail["seats_left"] == 0


async def test_same_idempotency_key_20_times_concurrently(client, mentor):
    pub = await published(mentor, capacity=5, price_cents=2000)
    learner = (await quick_users(client, 1))[0]
    responses = await asyncio.gather(*(book(learner, pub["id"], key="same-key-1") for _ in range(20)))
    counts = await _statuses(responses)
    print("same key x20:", dict(counts))
    assert set(counts) <= {200, 201} and counts[201] == 1
    bodies = [await r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies[1:]) or all(b["id"] == bodies[0]["id"] for b in bodies)
    assert await _active(client, pub["id"]) == (1, 1)
    other = await published(mentor)
    resp = await book(learner, other["id"], key="same-key-1")
    assert resp.status == 422
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0}


async def test_same_key_other_body_concurrently(client, mentor):
    a = await published(mentor)
    b = await published(mentor)
    learner = (await quick_users(client, 1))[0]
    responses = await asyncio.gather(*(book(learner, (a if i % 2 else b)["id"], key="k2") for i in range(10)))
    counts = await _statuses(responses)
    assert counts[201] == 1 and counts[201] + counts[200] + counts[422] == 10
    assert counts[200] + 1 == 5 and counts[422] == 5


async def test_concurrent_cancel_and_book_keep_seats_consistent(client, mentor):
    pub = await published(mentor, capacity=5)
    learners = await quick_users(client, 10)
    booked = [await (await book(lr, pub["id"])).json() for lr in learners[:5]]
    ops = [lr.post(f"/api/bookings/{b['id']}/cancel") for lr, b in zip(learners[:5], booked)]
    ops += [book(lr, pub["id"]) for lr in learners[5:]]
    responses = await asyncio.gather(*ops)
    assert all(r.status < 500 for r in responses)
    n, taken = await _active(client, pub["id"])
    assert n == taken <= 5


async def _fund_mentor(client, mentor, amount_each: int, n_bookings: int) -> None:
    """Give the mentor available earnings: bookings of a session that completes."""
    await set_platform(client, platform_fee_percent=0, min_payout_cents=100, max_capacity=50)
    pub = await published(mentor, capacity=n_bookings, price_cents=amount_each)
    learners = await quick_users(client, n_bookings)
    for lr in learners:
        assert (await book(lr, pub["id"])).status == 201
    await take_place(client, pub["id"], [lr.id for lr in learners])
    await after_hold(client, pub["id"])


async def test_100_concurrent_payouts_with_funds_for_k(client, mentor):
    k = 7
    await _fund_mentor(client, mentor, 1000, k)
    earnings = await (await mentor.get("/api/earnings")).json()
    assert earnings["available_cents"] == k * 1000
    responses = await asyncio.gather(
        *(mentor.post("/api/earnings/payout", json={"amount_cents": 1000}) for _ in range(100))
    )
    counts = await _statuses(responses)
    print("payouts:", dict(counts))
    assert counts == Counter({201: k, 409: 100 - k})
    earnings = await (await mentor.get("/api/earnings")).json()
    assert earnings["available_cents"] == 0 and earnings["paid_out_cents"] == k * 1000
    assert len(earnings["payouts"]) == k
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"]


async def test_concurrent_payouts_same_key(client, mentor):
    await _fund_mentor(client, mentor, 1000, 3)
    responses = await asyncio.gather(
        *(
            mentor.post("/api/earnings/payout", json={"amount_cents": 1000}, headers={"Idempotency-Key": "po-1"})
            for _ in range(20)
        )
    )
    counts = await _statuses(responses)
    assert counts[201] == 1 and counts[200] == 19
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    earnings = await (await mentor.get("/api/earnings")).json()
    assert earnings["available_cents"] == 2000
