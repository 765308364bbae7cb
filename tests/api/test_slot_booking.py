"""Booking a mentor's free slot: one 1:1 session, scheduled, booked and charged in one
transaction; the slot disappears; a race for one slot has exactly one winner (SQLite and,
with PEERLEARN_TEST_DATABASE_URL, PostgreSQL); anything that is no free slot is a 409."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from api.keys import DB
from api.models import Booking, Session, SessionStatus, User
from tests.api.market import quick_users, trial_balance
from tests.api.test_availability import BERLIN, day_window, put_rules, slots_of
from tests.conftest import signup


async def first_slot(client, mentor_id: int, days_ahead: int = 4) -> dict[str, object]:
    _, params = day_window(days_ahead)
    items = await slots_of(client, mentor_id, params)
    assert items
    return items[0]


async def book_slot(user, mentor_id: int, starts_at: object):
    return await user.post("/api/bookings/slot", json={"mentor_id": mentor_id, "starts_at": starts_at})


async def test_booking_a_slot_creates_a_charged_one_to_one(client, mentor, learner):
    await put_rules(mentor, price_cents=4000)
    slot = await first_slot(client, mentor.id)
    resp = await book_slot(learner, mentor.id, slot["starts_at"])
    assert resp.status == 201, await resp.text()
    booking = await resp.json()
    assert booking["learner_id"] == learner.id and booking["status"] == "confirmed"
    assert booking["price_cents"] == 4000 and booking["payment_ref"]
    session = booking["session"]
    assert session["mentor_id"] == mentor.id and session["status"] == "scheduled"
    assert datetime.fromisoformat(session["starts_at"]) == datetime.fromisoformat(slot["starts_at"])
    assert session["duration_min"] == 60
    detail = await (await learner.get(f"/api/sessions/{session['id']}")).json()
    assert detail["capacity"] == 1 and detail["seats_left"] == 0 and detail["booked"] is True
    # The slot is gone, for everyone.
    _, params = day_window(4)
    assert slot["starts_at"] not in [i["starts_at"] for i in await slots_of(client, mentor.id, params)]
    # Charged through the ledger like any booking: money balances, the mentor's share is pending.
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["unbalanced_journals"]
    mine = await (await learner.get("/api/bookings?when=upcoming")).json()
    assert [b["id"] for b in mine["items"]] == [booking["id"]]
    notes = await (await mentor.get("/api/notifications")).json()
    assert any(n["kind"] == "booking.created" and "booked your slot" in n["body"] for n in notes["items"])


async def test_the_same_slot_twice_is_slot_taken(client, mentor, learner):
    await put_rules(mentor)
    slot = await first_slot(client, mentor.id)
    assert (await book_slot(learner, mentor.id, slot["starts_at"])).status == 201
    other = await signup(client, "learner")
    resp = await book_slot(other, mentor.id, slot["starts_at"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_taken"


async def test_a_time_that_is_no_free_slot_is_409(client, mentor, learner):
    await put_rules(mentor, min_notice_hours=12)
    slot = await first_slot(client, mentor.id)
    start = datetime.fromisoformat(str(slot["starts_at"]))
    for when in (
        start + timedelta(minutes=15),  # between slots
        start.astimezone(BERLIN).replace(hour=3),  # outside the day's range
        datetime.now(BERLIN) + timedelta(hours=1),  # inside the minimum notice
        start + timedelta(days=200),  # beyond the horizon
    ):
        resp = await book_slot(learner, mentor.id, when.isoformat())
        assert resp.status == 409, (when, await resp.text())
        assert (await resp.json())["error"]["code"] == "slot_unavailable"
    assert (await book_slot(learner, mentor.id, "2027-01-01")).status == 400
    assert (await book_slot(learner, mentor.id, "0001-01-01T00:00:00+05:00")).status == 400


async def test_a_published_class_takes_the_slot(client, mentor, learner):
    await put_rules(mentor)
    slot = await first_slot(client, mentor.id)
    resp = await mentor.post(
        "/api/sessions",
        json={
            "title": "Group class",
            "domain": "Programming",
            "price_cents": 0,
            "capacity": 5,
            "starts_at": slot["starts_at"],
            "duration_min": 30,
        },
    )
    assert resp.status == 201, await resp.text()
    assert (await mentor.post(f"/api/sessions/{(await resp.json())['id']}/publish")).status == 200
    resp = await book_slot(learner, mentor.id, slot["starts_at"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "slot_taken"


async def test_both_sides_must_be_verified_and_active(client, mentor, learner, admin):
    await put_rules(mentor)
    slot = await first_slot(client, mentor.id)
    unverified = await signup(client, "learner", verified=False)
    resp = await book_slot(unverified, mentor.id, slot["starts_at"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "email_unverified"
    # A mentor who has not confirmed their address offers no slots and cannot be booked.
    async with client.app[DB].write() as s:
        await s.execute(update(User).where(User.id == mentor.id).values(email_verified_at=None))
    _, params = day_window(4)
    assert await slots_of(client, mentor.id, params) == []
    assert (await book_slot(learner, mentor.id, slot["starts_at"])).status == 409
    async with client.app[DB].write() as s:
        await s.execute(update(User).where(User.id == mentor.id).values(email_verified_at=func.now()))
    assert (await admin.post(f"/api/users/{mentor.id}/deactivate")).status == 200
    assert (await book_slot(learner, mentor.id, slot["starts_at"])).status == 404
    # Mentors do not book slots (as with /api/bookings/create), nor their own.
    other_mentor = await signup(client, "mentor")
    assert (await book_slot(other_mentor, mentor.id, slot["starts_at"])).status == 403


async def test_20_concurrent_bookings_of_one_slot(client, mentor):
    await put_rules(mentor, price_cents=2500)
    slot = await first_slot(client, mentor.id)
    learners = await quick_users(client, 20)
    responses = await asyncio.gather(*(book_slot(lr, mentor.id, slot["starts_at"]) for lr in learners))
    counts = Counter(r.status for r in responses)
    codes = Counter([(await r.json())["error"]["code"] for r in responses if r.status == 409])
    assert counts == Counter({201: 1, 409: 19}), counts
    assert codes == Counter({"slot_taken": 19})
    async with client.app[DB].read() as s:
        sessions = await s.scalar(
            select(func.count(Session.id)).where(
                Session.mentor_id == mentor.id, Session.status == SessionStatus.scheduled
            )
        )
        booked = await s.scalar(select(func.count(Booking.id)))
    assert sessions == 1 and booked == 1
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"] and not tb["unbalanced_journals"]


async def test_concurrent_bookings_of_different_slots_all_succeed(client, mentor):
    await put_rules(mentor)
    _, params = day_window(5)
    items = await slots_of(client, mentor.id, params)
    learners = await quick_users(client, len(items))
    responses = await asyncio.gather(*(book_slot(lr, mentor.id, i["starts_at"]) for lr, i in zip(learners, items)))
    assert [r.status for r in responses] == [201] * len(items)
    assert await slots_of(client, mentor.id, params) == []


async def test_a_retried_slot_booking_with_its_idempotency_key_is_made_once(client, mentor, learner):
    """The page retries a booking that met a 503; the retry (same key) gets the same booking
    back, not 409 slot_taken by itself and not a second charge; the key with another slot is 422."""
    await put_rules(mentor, price_cents=2500)
    slots = await slots_of(client, mentor.id, day_window(4)[1])
    body = {"mentor_id": mentor.id, "starts_at": slots[0]["starts_at"]}
    headers = {"Idempotency-Key": "slot-retry-1"}
    first = await learner.post("/api/bookings/slot", json=body, headers=headers)
    assert first.status == 201, await first.text()
    again = await asyncio.gather(*(learner.post("/api/bookings/slot", json=body, headers=headers) for _ in range(3)))
    assert [r.status for r in again] == [200, 200, 200]
    assert {(await r.json())["id"] for r in again} == {(await first.json())["id"]}
    other = await learner.post("/api/bookings/slot", json={**body, "starts_at": slots[1]["starts_at"]}, headers=headers)
    assert other.status == 422 and (await other.json())["error"]["code"] == "idempotency_mismatch"
    mine = await (await learner.get("/api/bookings")).json()
    assert len(mine["items"]) == 1
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["unbalanced_journals"]
