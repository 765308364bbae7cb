"""Ledger: balanced journals, immutability, fees, release on completion, earnings, payouts, transaction log."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from api.context import Context
from api.keys import DB
from api.models import Journal, LedgerEntry, Session
from api.services.money import ledger
from tests.api.classes import after_hold, take_place
from tests.api.market import book, published, quick_users, set_platform, trial_balance


def test_fee_split_rounds_half_up():
    assert ledger.fee_split(2000, 15) == (300, 1700)
    assert ledger.fee_split(999, 15) == (150, 849)  # 149.85 -> 150
    assert ledger.fee_split(1, 50) == (1, 0)
    assert ledger.fee_split(1000, 0) == (0, 1000)
    assert ledger.fee_split(1234, 12.5) == (154, 1080)


async def test_unbalanced_journal_is_refused(client):
    with pytest.raises(ledger.UnbalancedJournal):
        async with client.app[DB].write() as s:
            await ledger.post(s, "charge", [("external:sandbox", -100), ("platform:fees", 99)], currency="USD")
    tb = await trial_balance(client)
    assert tb["totals"] == {}


async def test_no_internal_account_may_go_negative(client, mentor):
    from api.services.errors import Conflict

    with pytest.raises(Conflict) as err:
        async with client.app[DB].write() as s:
            await ledger.post(
                s,
                "payout",
                [(ledger.mentor_available(mentor.id), -1), (ledger.mentor_paid(mentor.id), 1)],
                currency="USD",
            )
    assert err.value.code == "insufficient_funds"
    async with client.app[DB].read() as s:
        assert await ledger.balance(s, ledger.mentor_paid(mentor.id)) == 0


async def test_entries_and_journals_are_immutable(client, learner, mentor):
    pub = await published(mentor, price_cents=1000)
    await book(learner, pub["id"])
    db = client.app[DB]
    with pytest.raises(ledger.ImmutableLedger):
        async with db.write() as s:
            entry = await s.get(LedgerEntry, 1)
            entry.amount_cents = 5
    with pytest.raises(ledger.ImmutableLedger):
        async with db.write() as s:
            await s.delete(await s.get(LedgerEntry, 1))
    with pytest.raises(ledger.ImmutableLedger):
        async with db.write() as s:
            j = await s.get(Journal, 1)
            j.reference = "rewritten"
    with pytest.raises(ledger.ImmutableLedger):
        async with db.write() as s:
            await s.execute(update(LedgerEntry).values(amount_cents=0))
    with pytest.raises(ledger.ImmutableLedger):
        async with db.write() as s:
            await s.execute(delete(Journal))
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0}


async def test_check_constraint_is_the_last_line_against_overselling(client, mentor):
    pub = await published(mentor, capacity=2)
    with pytest.raises(IntegrityError):
        async with client.app[DB].write() as s:
            await s.execute(update(Session).where(Session.id == pub["id"]).values(seats_taken=3))


async def test_charge_fee_release_and_earnings(client, mentor):
    await set_platform(client, platform_fee_percent=20, min_payout_cents=500)
    pub = await published(mentor, price_cents=5000, capacity=3)
    learners = await quick_users(client, 3)
    for lr in learners:
        assert (await book(lr, pub["id"])).status == 201
    e = await (await mentor.get("/api/earnings")).json()
    assert (e["pending_cents"], e["available_cents"], e["total_earned_cents"]) == (12000, 0, 0)
    assert e["test_mode"] is True and e["min_payout_cents"] == 500
    ctx = Context.of(client.app)
    await take_place(client, pub["id"], [lr.id for lr in learners])
    # The class took place, but its earnings wait out the hold (a learner may still report a problem).
    e = await (await mentor.get("/api/earnings")).json()
    assert (e["pending_cents"], e["available_cents"], e["total_earned_cents"]) == (12000, 0, 0)
    assert len(await after_hold(client, pub["id"])) == 3
    # release is idempotent: a second pass posts nothing new
    assert await after_hold(client, pub["id"]) == []
    e = await (await mentor.get("/api/earnings")).json()
    assert (e["pending_cents"], e["available_cents"], e["total_earned_cents"]) == (0, 12000, 12000)
    async with client.app[DB].read() as s:
        assert await ledger.balance(s, ledger.PLATFORM_FEES) == 3000
        assert await ledger.balance(s, ledger.PLATFORM_FEES_PENDING) == 0
    kinds = [x["kind"] for x in e["recent_entries"]]
    assert "release" in kinds and "charge" in kinds
    log = await ledger.transactions(ctx, page=1, page_size=10)
    assert log["total"] == 6 and log["items"][0]["kind"] == "release"
    assert all(sum(en["amount_cents"] for en in j["entries"]) == 0 for j in log["items"])
    only = await ledger.transactions(ctx, kind="charge", account=f"mentor:{mentor.id}:")
    assert only["total"] == 3


async def test_payout_rules(client, mentor, learner):
    await set_platform(client, platform_fee_percent=0, min_payout_cents=1000)
    pub = await published(mentor, price_cents=3000)
    await book(learner, pub["id"])
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 1000})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "insufficient_funds"
    await take_place(client, pub["id"], [learner.id])
    # Payouts take only available funds: within the hold the money is still pending.
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 1000})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "insufficient_funds"
    await after_hold(client, pub["id"])
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 999})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "below_minimum"
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 3001})
    assert resp.status == 409
    resp = await mentor.post("/api/earnings/payout", json={"amount_cents": 2000}, headers={"Idempotency-Key": "p1"})
    assert resp.status == 201
    p = await resp.json()
    assert p["status"] == "paid" and p["reference"].startswith("sandbox_po_") and p["test_mode"]
    again = await mentor.post("/api/earnings/payout", json={"amount_cents": 2000}, headers={"Idempotency-Key": "p1"})
    assert again.status == 200 and await again.json() == p
    other = await mentor.post("/api/earnings/payout", json={"amount_cents": 1000}, headers={"Idempotency-Key": "p1"})
    assert other.status == 422
    for bad in ({}, {"amount_cents": 0}, {"amount_cents": "x"}, {"amount_cents": 100, "to": "me"}):
        assert (await mentor.post("/api/earnings/payout", json=bad)).status == 400
    assert (await learner.post("/api/earnings/payout", json={"amount_cents": 1000})).status == 403
    assert (await client.post("/api/earnings/payout", json={"amount_cents": 1000})).status == 401
    assert (await learner.get("/api/earnings")).status == 403
    assert (await client.get("/api/earnings")).status == 401
    e = await (await mentor.get("/api/earnings")).json()
    assert (e["available_cents"], e["paid_out_cents"], e["total_earned_cents"]) == (1000, 2000, 3000)
    assert [x["amount_cents"] for x in e["payouts"]] == [2000]
    notes = await (await mentor.get("/api/notifications")).json()
    items = notes["items"] if isinstance(notes, dict) else notes
    assert any(n["kind"] == "payout.status" for n in items)
    tb = await trial_balance(client)
    assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"]


async def test_other_currency_is_kept_apart(client, mentor, learner):
    await set_platform(client, platform_fee_percent=10)
    pub = await published(mentor, price_cents=1000, currency="EUR")
    await book(learner, pub["id"])
    e = await (await mentor.get("/api/earnings?currency=EUR")).json()
    assert e["pending_cents"] == 900 and e["currencies"] == ["EUR"]
    usd = await (await mentor.get("/api/earnings")).json()
    assert usd["pending_cents"] == 0
    tb = await trial_balance(client)
    assert tb["totals"] == {"EUR": 0}


async def test_demo_data_goes_through_the_ledger_and_is_idempotent(settings):
    from sqlalchemy import func, select

    from api.db import Database
    from api.demo import load_demo
    from api.models import Booking, Payout

    await load_demo(settings)
    db = Database(settings.effective_database_url)
    try:
        async with db.read() as s:
            tb = await ledger.trial_balance(s)
            counts = [await s.scalar(select(func.count(m.id))) for m in (Booking, Journal, Payout, Session)]
            mismatched = (
                await s.execute(
                    select(Session.id).where(
                        Session.seats_taken
                        != (
                            select(func.count(Booking.id))
                            .where(Booking.session_id == Session.id, Booking.status != "cancelled")
                            .scalar_subquery()
                        )
                    )
                )
            ).all()
        assert tb["totals"] == {"USD": 0} and not tb["negative_accounts"] and not tb["unbalanced_journals"]
        assert counts[0] > 0 and counts[1] > 0 and counts[2] > 0
        assert mismatched == []
        await load_demo(settings)
        async with db.read() as s:
            again = [await s.scalar(select(func.count(m.id))) for m in (Booking, Journal, Payout, Session)]
        assert again == counts
    finally:
        await db.dispose()
