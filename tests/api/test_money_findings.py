"""Issue 22's adversarial findings, each replayed over HTTP against the written model
(docs/money.md): a greedy mentor, a freeloading learner, a stale page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api.context import Context
from api.keys import DB
from api.models import Booking, Journal, Session, utcnow
from api.services import rooms
from api.services.money import charges, ledger, settlement
from api.services.money.provider import PaymentResult, SandboxProvider
from tests.api.classes import after_hold, in_room, move_start
from tests.api.market import book, confirm_proposal, future, published, quick_users, set_platform, trial_balance
from tests.conftest import signup


async def _sold(client, mentor, n=1, price=5000, **fields):
    await set_platform(client, platform_fee_percent=20, min_payout_cents=100, earnings_hold_hours=24)
    pub = await published(mentor, price_cents=price, capacity=max(n, 1), **fields)
    learners = await quick_users(client, n)
    ids = []
    for lr in learners:
        resp = await book(lr, pub["id"])
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["id"])
    return pub["id"], learners, ids


async def _journals(client, sid):
    async with client.app[DB].read() as s:
        return sorted((await s.scalars(select(Journal.kind).where(Journal.session_id == sid))).all())


async def _mentor_money(client, mentor_id):
    async with client.app[DB].read() as s:
        b = await ledger.mentor_balances(s, mentor_id)
    return b.pending, b.available


async def _balanced(client):
    tb = await trial_balance(client)
    assert tb["totals"] in ({}, {"USD": 0}) and not tb["negative_accounts"] and not tb["unbalanced_journals"]


async def _ask(learner, mentor, times):
    """A learner's request to this mentor for one of ``times``; its id."""
    resp = await learner.post(
        "/api/requests/create",
        json={"topic": "Help", "domain": "Programming", "mentor_id": mentor.id, "preferred_times": times},
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


async def _end(mentor, sid):
    resp = await mentor.post(f"/api/rooms/{sid}/end")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["status"]


# ---------------------------------------------------------------- 1. the ghost mentor


async def test_ghost_mentor_who_never_met_a_learner_is_not_paid(client, mentor):
    """The mentor was in the room 6 s, 75 s before the start; a learner 6 s alone; nobody at or
    after the start; End 2 s after the start: the class did not take place, both refunded."""
    sid, (l1, l2), _ = await _sold(client, mentor, n=2)
    start = utcnow() - timedelta(seconds=2)
    await move_start(client, sid, start)
    await rooms.start_class(Context.of(client.app), sid)
    await in_room(client, sid, mentor.id, "mentor", start - timedelta(seconds=75), start - timedelta(seconds=69))
    await in_room(client, sid, l1.id, "learner", start - timedelta(seconds=40), start - timedelta(seconds=34))
    assert await _end(mentor, sid) == "cancelled"
    assert await _journals(client, sid) == ["charge", "charge", "refund", "refund"]
    assert await after_hold(client) == []
    assert await _mentor_money(client, mentor.id) == (0, 0)
    await _balanced(client)


async def test_ending_right_after_the_start_with_learners_there_refunds(client, mentor):
    """Everyone connected, End one second after the start: too short to be a class."""
    sid, (lr,), _ = await _sold(client, mentor)
    start = utcnow() - timedelta(seconds=1)
    await move_start(client, sid, start)
    await rooms.start_class(Context.of(client.app), sid)
    await in_room(client, sid, mentor.id, "mentor", start - timedelta(minutes=2))
    await in_room(client, sid, lr.id, "learner", start - timedelta(minutes=1))
    assert await _end(mentor, sid) == "cancelled"
    assert await _journals(client, sid) == ["charge", "refund"]
    assert await _mentor_money(client, mentor.id) == (0, 0)


async def test_presence_without_the_mentor_is_not_attendance(client, mentor):
    """The mentor and learner 1 held the class; learner 2 came only after the mentor left:
    learner 1 attended, learner 2 is refunded (the mentor was not there for them)."""
    sid, (l1, l2), (b1, b2) = await _sold(client, mentor, n=2)
    start = utcnow() - timedelta(minutes=60)
    await move_start(client, sid, start)
    await in_room(client, sid, mentor.id, "mentor", start, start + timedelta(minutes=30))
    await in_room(client, sid, l1.id, "learner", start, start + timedelta(minutes=30))
    await in_room(client, sid, l2.id, "learner", start + timedelta(minutes=35), start + timedelta(minutes=60))
    out = await settlement.settle_session(Context.of(client.app), sid)
    assert out.took_place and out.attended == [b1] and out.refunded == [b2]
    await after_hold(client)
    assert await _mentor_money(client, mentor.id) == (0, 4000)
    await _balanced(client)


# ---------------------------------------------------------------- 2. moved into the no-refund window


async def test_a_class_moved_after_the_sale_refunds_in_full_whatever_the_window(client, mentor):
    sid, (lr,), (bid,) = await _sold(client, mentor, price=15000, starts_at=future(24 * 5))
    resp = await mentor.post(f"/api/sessions/{sid}/update", json={"starts_at": future(2)})
    assert resp.status == 200, await resp.text()
    got = await (await lr.get(f"/api/bookings/{bid}")).json()
    assert got["terms_changed"] is True
    resp = await lr.post(f"/api/bookings/{bid}/cancel")
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 15000
    await _balanced(client)


async def test_accepting_the_new_time_makes_it_the_booked_one(client, mentor):
    sid, (lr,), (bid,) = await _sold(client, mentor, price=15000, starts_at=future(24 * 5))
    await mentor.post(f"/api/sessions/{sid}/update", json={"starts_at": future(2)})
    resp = await lr.post(f"/api/bookings/{bid}/accept-change")
    assert resp.status == 200 and (await resp.json())["terms_changed"] is False
    again = await lr.post(f"/api/bookings/{bid}/accept-change")
    assert again.status == 409 and (await again.json())["error"]["code"] == "no_change"
    resp = await lr.post(f"/api/bookings/{bid}/cancel")  # accepted: inside the 24 h window now
    assert resp.status == 200 and (await resp.json())["refund_cents"] == 0


async def test_an_absent_learner_of_a_moved_class_is_refunded_not_a_no_show(client, mentor):
    sid, (lr,), (bid,) = await _sold(client, mentor, starts_at=future(24 * 5))
    await mentor.post(f"/api/sessions/{sid}/update", json={"starts_at": future(1)})
    start = utcnow() - timedelta(minutes=60)
    async with client.app[DB].write() as s:  # time passes: the class is over; the booked time stays 5 days out
        (await s.get(Session, sid)).starts_at = start
    await in_room(client, sid, mentor.id, "mentor", start, start + timedelta(minutes=30))
    out = await settlement.settle_session(Context.of(client.app), sid)
    assert out.refunded == [bid] and not out.no_show
    assert await _journals(client, sid) == ["charge", "refund"]


# ---------------------------------------------------------------- 3. bait and switch


async def test_confirm_binds_to_the_proposal_the_learner_saw(client, learner, mentor):
    times = [future(24), future(48)]
    rid = await _ask(learner, mentor, times)
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 1000})
    seen = (await (await learner.get(f"/api/requests/{rid}")).json())["proposal"]
    await learner.post(f"/api/requests/{rid}/proposal/decline")  # or it lapsed
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 1_000_000})
    stale = {"price_cents": seen["price_cents"], "starts_at": seen["starts_at"], "mentor_id": mentor.id}
    resp = await learner.post(f"/api/requests/{rid}/proposal/confirm", json=stale)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "proposal_changed"
    missing = await learner.post(f"/api/requests/{rid}/proposal/confirm")
    assert missing.status == 400
    async with client.app[DB].read() as s:
        assert (await s.scalars(select(Journal))).all() == []
    assert (await confirm_proposal(learner, rid)).status == 200  # the new price, knowingly


# ---------------------------------------------------------------- 4. money stranded in pending


async def test_a_late_cancellation_is_released_with_its_class(client, mentor):
    await set_platform(client, refund_window_hours=24 * 30)
    sid, (late, came), (late_bid, _) = await _sold(client, mentor, n=2)
    resp = await late.post(f"/api/bookings/{late_bid}/cancel")
    assert (await resp.json())["refund_cents"] == 0
    start = utcnow() - timedelta(minutes=60)
    await move_start(client, sid, start)
    await in_room(client, sid, mentor.id, "mentor", start)
    await in_room(client, sid, came.id, "learner", start)
    await settlement.settle_session(Context.of(client.app), sid)
    await after_hold(client)
    assert await _mentor_money(client, mentor.id) == (0, 8000)  # both seats, nothing left pending
    await _balanced(client)


async def test_a_late_cancellation_is_refunded_when_the_class_is_cancelled(client, mentor):
    await set_platform(client, refund_window_hours=24 * 30)
    sid, (late,), (bid,) = await _sold(client, mentor)
    assert (await (await late.post(f"/api/bookings/{bid}/cancel")).json())["refund_cents"] == 0
    resp = await mentor.post(f"/api/sessions/{sid}/cancel", json={"reason": "ill"})
    assert resp.status == 200, await resp.text()
    assert await _journals(client, sid) == ["charge", "refund"]
    assert await _mentor_money(client, mentor.id) == (0, 0)


# ---------------------------------------------------------------- 5. both sides checked


async def test_an_unverified_mentor_cannot_sell_through_a_request(client, learner):
    shady = await signup(client, "mentor", verified=False, domains=["Programming"])
    times = [future(24)]
    rid = await _ask(learner, shady, times)
    resp = await shady.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 5000})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "email_unverified"


async def test_a_deactivated_mentor_takes_no_more_money(client, learner, mentor, admin):
    sid, (lr,), (bid,) = await _sold(client, mentor)
    other = await published(mentor, price_cents=3000)
    times = [future(24)]
    rid = await _ask(learner, mentor, times)
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 5000})
    seen = (await (await learner.get(f"/api/requests/{rid}")).json())["proposal"]
    assert (await admin.post(f"/api/users/{mentor.id}/deactivate")).status == 200
    # the sold class is cancelled and refunded; the other can no longer be booked
    assert (await (await lr.get(f"/api/bookings/{bid}")).json())["refunded"] is True
    resp = await book(learner, other["id"])
    assert resp.status == 409, await resp.text()
    # the proposal is withdrawn: confirming it charges nothing
    body = {"price_cents": seen["price_cents"], "starts_at": seen["starts_at"], "mentor_id": mentor.id}
    resp = await learner.post(f"/api/requests/{rid}/proposal/confirm", json=body)
    assert resp.status == 409
    async with client.app[DB].read() as s:
        assert await s.scalar(select(Booking.id).where(Booking.learner_id == learner.id)) is None
    await _balanced(client)


# ---------------------------------------------------------------- 7. the provider refunds too


async def test_cancelling_a_session_refunds_at_the_provider(client, mentor, monkeypatch):
    calls: list[str] = []

    class Recording(SandboxProvider):
        def refund(self, *, charge_reference: str, amount_cents: int, currency: str) -> PaymentResult:
            calls.append(charge_reference)
            return super().refund(charge_reference=charge_reference, amount_cents=amount_cents, currency=currency)

    monkeypatch.setattr(charges, "provider", Recording())
    sid, _, (bid,) = await _sold(client, mentor)
    await mentor.post(f"/api/sessions/{sid}/cancel", json={"reason": "ill"})
    async with client.app[DB].read() as s:
        ref = (await s.get(Booking, bid)).payment_ref
    assert calls == [ref]


# ---------------------------------------------------------------- the adversary's second pass


async def test_a_cancelled_seat_leaves_the_room(client, mentor):
    """A learner cancelling (refunded or not) from inside the live room loses the room: their
    room token stops working, so the socket's watcher closes it (no refund and a class)."""
    from api.models import RoomToken

    sid, (lr,), (bid,) = await _sold(client, mentor, starts_at=future(24 * 5))
    await move_start(client, sid, utcnow() + timedelta(minutes=4))
    await rooms.start_class(Context.of(client.app), sid)
    resp = await lr.post(f"/api/rooms/{sid}/token")
    assert resp.status == 200, await resp.text()
    assert (await lr.post(f"/api/bookings/{bid}/cancel")).status == 200
    async with client.app[DB].read() as s:
        tokens = (await s.scalars(select(RoomToken).where(RoomToken.session_id == sid))).all()
    assert tokens and all(t.expires_at <= utcnow() for t in tokens)
    assert (await lr.post(f"/api/rooms/{sid}/token")).status == 403


async def test_a_late_canceller_is_refunded_when_the_class_is_moved_after(client, mentor):
    await set_platform(client, refund_window_hours=24 * 30)
    sid, (late, came), (late_bid, _) = await _sold(client, mentor, n=2, starts_at=future(24 * 5))
    assert (await (await late.post(f"/api/bookings/{late_bid}/cancel")).json())["refund_cents"] == 0
    resp = await mentor.post(f"/api/sessions/{sid}/update", json={"duration_min": 30})  # shortened
    assert resp.status == 200, await resp.text()
    start = utcnow() - timedelta(minutes=30)
    async with client.app[DB].write() as s:  # time passes; the class kept its (shortened) terms for `came`
        (await s.get(Session, sid)).starts_at = start
        for b in (await s.scalars(select(Booking).where(Booking.session_id == sid))).all():
            b.booked_starts_at = start if b.learner_id == came.id else b.booked_starts_at
            b.booked_duration_min = 30 if b.learner_id == came.id else b.booked_duration_min
    await in_room(client, sid, mentor.id, "mentor", start)
    await in_room(client, sid, came.id, "learner", start)
    out = await settlement.settle_session(Context.of(client.app), sid)
    assert out.took_place
    async with client.app[DB].read() as s:
        kinds = {
            b: sorted((await s.scalars(select(Journal.kind).where(Journal.booking_id == b))).all()) for b in (late_bid,)
        }
    assert kinds == {late_bid: ["charge", "refund"]}


async def test_a_mentor_arriving_after_the_scheduled_end_is_not_paid_for_no_shows(client, mentor):
    """The class ran 15 minutes ago; the mentor joins in the room's grace period after it,
    waits alone and presses End: not a class, the learner is refunded."""
    sid, (lr,), (bid,) = await _sold(client, mentor, duration_min=15)
    start = utcnow() - timedelta(minutes=30)
    await move_start(client, sid, start)
    await rooms.start_class(Context.of(client.app), sid)
    await in_room(client, sid, mentor.id, "mentor", start + timedelta(minutes=16))
    assert await _end(mentor, sid) == "cancelled"
    assert await _journals(client, sid) == ["charge", "refund"]


async def test_confirm_names_the_mentor_it_agrees_to(client, learner, mentor):
    times = [future(24)]
    rid = await _ask(learner, mentor, times)
    await mentor.post(f"/api/requests/{rid}/accept", json={"starts_at": times[0], "price_cents": 1000})
    seen = (await (await learner.get(f"/api/requests/{rid}")).json())["proposal"]
    body = {"price_cents": 1000, "starts_at": seen["starts_at"]}
    assert (await learner.post(f"/api/requests/{rid}/proposal/confirm", json=body)).status == 400
    huge = await learner.post(f"/api/requests/{rid}/proposal/confirm", json=body | {"mentor_id": 2**70})
    assert huge.status == 400


# ---------------------------------------------------------------- a late-cancelled seat sold again


async def test_a_late_cancelled_seat_sold_again_refunds_the_canceller(client, mentor):
    """The mentor is paid once per seat: a full class's late canceller keeps paying only while
    nobody else takes the seat; when it is sold again the earliest late canceller is refunded.
    Free seats are no resale: a late canceller of a class with room to spare still pays."""
    await set_platform(client, refund_window_hours=24 * 30)
    sid, (first, second), (first_bid, second_bid) = await _sold(client, mentor, n=2)  # capacity 2: full
    for lr, bid in ((first, first_bid), (second, second_bid)):
        assert (await (await lr.post(f"/api/bookings/{bid}/cancel")).json())["refund_cents"] == 0
    [newcomer] = await quick_users(client, 1)
    resp = await book(newcomer, sid)
    assert resp.status == 201, await resp.text()
    async with client.app[DB].read() as s:
        refunded = {b: await charges.is_refunded(s, b) for b in (first_bid, second_bid)}
    assert refunded == {first_bid: True, second_bid: False}  # the earliest canceller's seat was sold
    notes = await (await first.get("/api/notifications")).json()
    assert any("taken by another learner" in n["body"] for n in notes["items"])
    # The class takes place: the mentor is paid for two seats (newcomer + the still-late second), not three.
    start = utcnow() - timedelta(minutes=60)
    await move_start(client, sid, start)
    await in_room(client, sid, mentor.id, "mentor", start)
    await in_room(client, sid, newcomer.id, "learner", start)
    await settlement.settle_session(Context.of(client.app), sid)
    await after_hold(client)
    assert await _mentor_money(client, mentor.id) == (0, 8000)
    await _balanced(client)


async def test_a_late_cancellation_with_seats_to_spare_is_not_a_resale(client, mentor):
    await set_platform(client, refund_window_hours=24 * 30)
    pub = await published(mentor, price_cents=5000, capacity=3)
    late, other = await quick_users(client, 2)
    bid = (await (await book(late, pub["id"])).json())["id"]
    assert (await (await late.post(f"/api/bookings/{bid}/cancel")).json())["refund_cents"] == 0
    assert (await book(other, pub["id"])).status == 201
    async with client.app[DB].read() as s:
        assert not await charges.is_refunded(s, bid)
    await _balanced(client)


async def test_a_mentor_cannot_keep_a_resold_seat_paid_twice_by_resizing_the_class(client, mentor):
    """Adversary finding: raise the capacity, sell the late canceller's seat, lower it again.
    Lowering it below the learners holding seats plus the late cancellers still paying refunds
    the earliest of those late cancellers."""
    await set_platform(client, refund_window_hours=24 * 30)
    sid, (late,), (late_bid,) = await _sold(client, mentor, n=1)  # a 1-seat class
    assert (await (await late.post(f"/api/bookings/{late_bid}/cancel")).json())["refund_cents"] == 0
    assert (await mentor.post(f"/api/sessions/{sid}/update", json={"capacity": 2})).status == 200
    [newcomer] = await quick_users(client, 1)
    assert (await book(newcomer, sid)).status == 201
    async with client.app[DB].read() as s:
        assert not await charges.is_refunded(s, late_bid)  # two seats, two payers: fair so far
    assert (await mentor.post(f"/api/sessions/{sid}/update", json={"capacity": 1})).status == 200
    async with client.app[DB].read() as s:
        assert await charges.is_refunded(s, late_bid)
    await _balanced(client)


async def test_rebooking_a_class_cancelled_late_charges_the_seat_once(client, mentor):
    await set_platform(client, refund_window_hours=24 * 30)
    pub = await published(mentor, price_cents=5000, capacity=3)
    [learner] = await quick_users(client, 1)
    bid = (await (await book(learner, pub["id"])).json())["id"]
    assert (await (await learner.post(f"/api/bookings/{bid}/cancel")).json())["refund_cents"] == 0
    assert (await book(learner, pub["id"])).status == 201
    async with client.app[DB].read() as s:
        assert await charges.is_refunded(s, bid)  # one seat, one charge
    notes = await (await learner.get("/api/notifications")).json()
    assert any("booked this class again" in n["body"] for n in notes["items"])
    await _balanced(client)
