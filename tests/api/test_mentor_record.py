"""Issue 26: a mentor's cancellations and no-shows count on their record, which admins see
in GET /api/admin/users (``mentor_record``), derived from sessions, bookings, attendance
and the cancellation's audit row."""

from __future__ import annotations

from tests.api.classes import take_place
from tests.api.market import book, published, quick_users


async def _sold(mentor, learner, **fields):
    pub = await published(mentor, price_cents=2000, capacity=2, **fields)
    resp = await book(learner, pub["id"])
    assert resp.status == 201, await resp.text()
    return pub["id"]


async def _record(admin, user_id):
    page = await (await admin.get("/api/admin/users?page_size=200")).json()
    return next(u for u in page["items"] if u["id"] == user_id)["mentor_record"]


async def test_cancellations_and_no_shows_count_on_the_mentor_record(client, admin, mentor):
    (lr,) = await quick_users(client, 1)
    assert await _record(admin, mentor.id) == {
        "sold_classes": 0,
        "cancelled_by_mentor": 0,
        "mentor_no_shows": 0,
        "cancel_rate": None,
        "no_show_rate": None,
    }
    assert await _record(admin, lr.id) is None  # learners have no mentor record

    held = await _sold(mentor, lr, title="Held")
    await take_place(client, held, [lr.id])
    # the mentor cancels a class with a seat sold: counted
    by_mentor = await _sold(mentor, lr, title="Mentor cancels")
    assert (await mentor.post(f"/api/sessions/{by_mentor}/cancel", json={})).status == 200
    # an admin cancels one: sold, but not the mentor's cancellation
    by_admin = await _sold(mentor, lr, title="Admin cancels")
    assert (await admin.post(f"/api/admin/sessions/{by_admin}/cancel", json={})).status == 200
    # cancelled before anyone booked: not a sold class at all
    empty = await published(mentor, title="Nobody booked")
    assert (await mentor.post(f"/api/sessions/{empty['id']}/cancel", json={})).status == 200
    # the learner came, the mentor never did: settled as not taken place, the mentor's no-show
    no_show = await _sold(mentor, lr, title="Mentor absent")
    settled = await take_place(client, no_show, [lr.id], mentor=False)
    assert not settled.took_place
    # the mentor came, the learner did not: held, the learner's no-show, not the mentor's
    alone = await _sold(mentor, lr, title="Learner absent")
    settled = await take_place(client, alone, [])
    assert settled.took_place and settled.no_show
    # the mentor was there but left before anyone came: not taken place, yet the mentor showed up
    left = await _sold(mentor, lr, title="Mentor left early")
    settled = await take_place(client, left, [lr.id], mentor_minutes=0.5)
    assert not settled.took_place

    assert await _record(admin, mentor.id) == {
        "sold_classes": 6,
        "cancelled_by_mentor": 1,
        "mentor_no_shows": 1,
        "cancel_rate": 0.1667,
        "no_show_rate": 0.1667,
    }


async def test_deactivation_cancellations_are_not_the_mentors(client, admin, mentor):
    """Deactivating a mentor cancels their future classes as the admin: not on their record."""
    (lr,) = await quick_users(client, 1)
    await _sold(mentor, lr)
    assert (await admin.post(f"/api/users/{mentor.id}/deactivate")).status == 200
    record = await _record(admin, mentor.id)
    assert record["sold_classes"] == 1 and record["cancelled_by_mentor"] == 0 and record["cancel_rate"] == 0.0
