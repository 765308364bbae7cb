"""Money follows what happened (issue 14): ending classes, attendance from the SFU's intervals,
no-shows, classes that did not take place, the earnings hold, problem reports and their resolution."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from api.context import Context
from api.keys import DB
from api.models import Booking, BookingReport, Journal, Notification, Session, utcnow
from api.services import rooms
from api.services.money import ledger, settlement
from tests.api.classes import after_hold, in_room, move_start, take_place
from tests.api.market import book, published, quick_users, set_platform, trial_balance


async def _booked(client, mentor, n=1, price=5000, **fields):
    await set_platform(client, platform_fee_percent=20, min_payout_cents=100)
    pub = await published(mentor, price_cents=price, capacity=max(n, 1), **fields)
    learners = await quick_users(client, n)
    ids = []
    for lr in learners:
        resp = await book(lr, pub["id"])
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["id"])
    return pub["id"], learners, ids


async def _state(client, sid, mentor_id):
    async with client.app[DB].read() as s:
        sess = await s.get(Session, sid)
        bookings = {
            b.learner_id: b.status.value
            for b in (await s.scalars(select(Booking).where(Booking.session_id == sid))).all()
        }
        kinds = sorted((await s.scalars(select(Journal.kind).where(Journal.session_id == sid))).all())
        bal = await ledger.mentor_balances(s, mentor_id)
    return sess.status.value, bookings, kinds, (bal.pending, bal.available)


async def _balanced(client):
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"] and not tb["unbalanced_journals"]


async def test_mentor_cannot_end_before_the_start_with_nobody_there(client, mentor):
    """Issue 14: the mentor opened the room 9 minutes early, alone, pressed End: completed,
    the learner's booking attended (no cancel any more) and the mentor paid."""
    sid, (lr,), (bid,) = await _booked(client, mentor)
    await move_start(client, sid, utcnow() + timedelta(minutes=9))
    ctx = Context.of(client.app)
    await rooms.start_class(ctx, sid)
    await in_room(client, sid, mentor.id, "mentor", utcnow())
    resp = await mentor.post(f"/api/rooms/{sid}/end")
    assert resp.status == 409
    assert await resp.json() == {
        "error": {"code": "too_early", "fields": {}, "message": "A class cannot be ended before its start time."}
    }
    assert await _state(client, sid, mentor.id) == ("live", {lr.id: "confirmed"}, ["charge"], (4000, 0))
    assert (await (await lr.get(f"/api/bookings/{bid}")).json())["status"] == "confirmed"
    # The room is open early, but until the start the learner may still cancel (inside the
    # 24 h refund window: without a refund, as any late cancellation).
    resp = await lr.post(f"/api/bookings/{bid}/cancel")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["refund_cents"] == 0
    await _balanced(client)


async def test_mentor_alone_ending_right_after_the_start_refunds_everyone(client, mentor):
    sid, learners, _ = await _booked(client, mentor, n=2)
    await move_start(client, sid, utcnow() - timedelta(minutes=2))
    await rooms.start_class(Context.of(client.app), sid)
    await in_room(client, sid, mentor.id, "mentor", utcnow() - timedelta(minutes=3))
    resp = await mentor.post(f"/api/rooms/{sid}/end")
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    status, bookings, kinds, balances = await _state(client, sid, mentor.id)
    assert status == "cancelled" and set(bookings.values()) == {"cancelled"}
    assert kinds == ["charge", "charge", "refund", "refund"] and balances == (0, 0)
    mine = await (await learners[0].get("/api/bookings")).json()
    assert mine["items"][0]["refunded"] is True
    await _balanced(client)


async def test_class_nobody_started_refunds_and_pays_nothing(client, mentor):
    sid, learners, _ = await _booked(client, mentor, n=2)
    out = await take_place(client, sid, [], mentor=False)
    assert not out.took_place and len(out.refunded) == 2
    assert await _state(client, sid, mentor.id) == (
        "cancelled",
        {lr.id: "cancelled" for lr in learners},
        ["charge", "charge", "refund", "refund"],
        (0, 0),
    )
    assert await after_hold(client) == []
    await _balanced(client)


async def test_attendance_decides_attended_and_no_show(client, mentor):
    sid, (came, missed), _ = await _booked(client, mentor, n=2)
    out = await take_place(client, sid, [came.id])
    assert out.took_place
    status, bookings, kinds, balances = await _state(client, sid, mentor.id)
    assert status == "completed" and bookings == {came.id: "attended", missed.id: "no_show"}
    # No-show policy: not refunded, the mentor is paid (after the hold) for both seats.
    assert kinds == ["charge", "charge"] and balances == (8000, 0)
    async with client.app[DB].read() as s:
        kinds_of = {
            uid: set((await s.scalars(select(Notification.kind).where(Notification.user_id == uid))).all())
            for uid in (came.id, missed.id, mentor.id)
        }
    assert "session.completed" in kinds_of[came.id] and "session.no_show" in kinds_of[missed.id]
    assert "session.completed" in kinds_of[mentor.id]
    await after_hold(client, sid)
    assert (await _state(client, sid, mentor.id))[3] == (0, 8000)
    await _balanced(client)


async def test_mentor_who_waited_is_paid_for_a_no_show(client, mentor):
    sid, (lr,), _ = await _booked(client, mentor)
    out = await take_place(client, sid, [], mentor_minutes=15)
    assert out.took_place and out.no_show
    assert (await _state(client, sid, mentor.id))[:2] == ("completed", {lr.id: "no_show"})


async def test_mentor_who_left_before_waiting_pays_back_the_no_show(client, mentor):
    sid, (lr,), _ = await _booked(client, mentor)
    out = await take_place(client, sid, [], mentor_minutes=3)  # no_show_wait_minutes is 10
    assert not out.took_place
    assert await _state(client, sid, mentor.id) == ("cancelled", {lr.id: "cancelled"}, ["charge", "refund"], (0, 0))


async def test_earnings_available_only_after_the_hold(client, mentor):
    await set_platform(client, earnings_hold_hours=24)
    sid, (lr,), (bid,) = await _booked(client, mentor)
    await take_place(client, sid, [lr.id])
    ctx = Context.of(client.app)
    assert await settlement.release_due(ctx, utcnow() + timedelta(hours=23)) == []
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 100})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "insufficient_funds"
    assert await settlement.release_due(ctx, utcnow() + timedelta(hours=25)) == [bid]
    e = await (await mentor.get("/api/earnings")).json()
    assert (e["pending_cents"], e["available_cents"]) == (0, 4000)
    assert (await mentor.post("/api/earnings/payout", json={"amount_cents": 4000})).status == 201
    assert (await mentor.post("/api/earnings/payout", json={"amount_cents": 100})).status == 409
    await _balanced(client)


async def test_zero_hold_releases_at_once(client, mentor):
    await set_platform(client, earnings_hold_hours=0)
    sid, (lr,), _ = await _booked(client, mentor)
    await take_place(client, sid, [lr.id])
    assert (await _state(client, sid, mentor.id))[3] == (0, 4000)


async def test_report_holds_earnings_until_an_admin_refunds(client, mentor, admin):
    sid, (lr,), (bid,) = await _booked(client, mentor)
    early = await lr.post(f"/api/bookings/{bid}/report", json={"reason": "Not even started"})
    assert early.status == 409 and (await early.json())["error"]["code"] == "not_reportable"
    await take_place(client, sid, [lr.id])
    mine = await (await lr.get("/api/reports")).json()
    assert [r["booking_id"] for r in mine["reportable"]] == [bid] and mine["items"] == []
    assert (await lr.post(f"/api/bookings/{bid}/report", json={"reason": "x"})).status == 400
    resp = await lr.post(f"/api/bookings/{bid}/report", json={"reason": "The audio never worked"})
    assert resp.status == 201, await resp.text()
    report = await resp.json()
    assert report["status"] == "open" and report["amount_cents"] == 5000 and report["mentor_id"] == mentor.id
    again = await lr.post(f"/api/bookings/{bid}/report", json={"reason": "Once more, louder"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_reported"
    mine = await (await lr.get("/api/reports")).json()
    assert mine["reportable"] == [] and [r["id"] for r in mine["items"]] == [report["id"]]
    # The hold passes: a reported booking stays held.
    assert await after_hold(client) == []
    assert (await _state(client, sid, mentor.id))[3] == (4000, 0)
    # Admins see it in their queue and refund it.
    assert (await mentor.get("/api/admin/reports")).status == 403
    queue = await (await admin.get("/api/admin/reports?status=open")).json()
    assert [r["id"] for r in queue["items"]] == [report["id"]]
    resp = await admin.post(
        f"/api/admin/reports/{report['id']}/resolve", json={"action": "refund", "note": "Confirmed with the mentor"}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "refunded"
    again = await admin.post(f"/api/admin/reports/{report['id']}/resolve", json={"action": "release"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "report_resolved"
    _, _, kinds, balances = await _state(client, sid, mentor.id)
    assert kinds == ["charge", "refund"] and balances == (0, 0)
    assert await after_hold(client) == []
    assert (await (await lr.get("/api/bookings")).json())["items"][0]["refunded"] is True
    await _balanced(client)


async def test_report_resolved_by_release_pays_the_mentor_now(client, mentor, admin):
    sid, (lr,), (bid,) = await _booked(client, mentor)
    await take_place(client, sid, [lr.id])
    rid = (await (await lr.post(f"/api/bookings/{bid}/report", json={"reason": "Mentor was late"})).json())["id"]
    resp = await admin.post(f"/api/admin/reports/{rid}/resolve", json={"action": "release"})
    assert resp.status == 200 and (await resp.json())["status"] == "released"
    assert (await _state(client, sid, mentor.id))[3] == (0, 4000)
    assert await after_hold(client) == []  # released once, not twice
    await _balanced(client)


async def test_report_refusals(client, mentor, learner):
    sid, (lr,), (bid,) = await _booked(client, mentor)
    await take_place(client, sid, [lr.id])
    assert (await learner.post(f"/api/bookings/{bid}/report", json={"reason": "Not my booking"})).status == 404
    assert (await mentor.post(f"/api/bookings/{bid}/report", json={"reason": "I am the mentor"})).status == 403
    await after_hold(client, sid)
    late = await lr.post(f"/api/bookings/{bid}/report", json={"reason": "Too late now"})
    assert late.status == 409 and (await late.json())["error"]["code"] == "report_window_closed"


async def test_concurrent_reports_and_resolutions_post_once(client, mentor, admin):
    sid, (lr,), (bid,) = await _booked(client, mentor)
    await take_place(client, sid, [lr.id])
    results = await asyncio.gather(
        *(lr.post(f"/api/bookings/{bid}/report", json={"reason": "Bad class"}) for _ in range(5))
    )
    assert sorted(r.status for r in results) == [201, 409, 409, 409, 409]
    async with client.app[DB].read() as s:
        rid = await s.scalar(select(BookingReport.id))
    results = await asyncio.gather(
        *(admin.post(f"/api/admin/reports/{rid}/resolve", json={"action": a}) for a in ("refund", "release", "refund"))
    )
    assert sorted(r.status for r in results) == [200, 409, 409]
    await _balanced(client)
