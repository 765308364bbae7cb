"""A hypothesis state machine over book / cancel (with or without refund) / cancel session /
attend (a learner or the mentor in the room) / end (settled from attendance: attended, no-show,
or not held and refunded) / the hold passing / report / resolve (refund or release) / payout,
checking after every step:

- 0 <= seats_taken <= capacity and seats_taken == active bookings, for every session;
- the model's expected active bookings and their statuses equal the database's;
- every journal balances and the whole ledger sums to zero (debits == credits);
- no internal account is negative; no booking is both refunded and released;
- the mentor's available money is exactly what was released minus what was paid out;
- the written model (docs/money.md), restated here minute by minute from adversarial
  timelines (mentor and learners joining and leaving before, during and after the class,
  End at any moment, classes moved after the sale): a mentor is paid only for classes that
  took place; every learner owed a refund got it; once a class is settled and the hold is
  over, no charge stays pending unless a report holds it; every charge ends released or
  refunded, never both; the payment provider saw exactly the charges and refunds the
  ledger recorded.

It drives the services directly (one event loop, one database per test run, fresh
mentor/learners/sessions per example) on SQLite, or PostgreSQL when configured.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select, update

from api.broker import MemoryBroker
from api.context import Context
from api.db import Database
from api.mailer import Mailer
from api.models import (
    Booking,
    BookingReport,
    BookingStatus,
    Journal,
    LedgerEntry,
    ReportStatus,
    Role,
    Session,
    SessionStatus,
    User,
    utcnow,
)
from api.schemas.sessions import SessionCreate, SessionUpdate
from api.services.errors import Conflict, Invalid, NotFound, Unprocessable
from api.services import attendance, bookings, catalog, reports
from api.services.money import charges, earnings, ledger, settlement
from api.services.money.provider import PaymentResult, SandboxProvider
from api.services.settings_store import PlatformSettingsUpdate
from api.services.settings_store import update as update_settings
from api.settings import Settings
from tests.conftest import PG_URL, _clone_pg, _drop_pg


@dataclass(frozen=True)
class Who:
    id: int
    role: str


# The written model (docs/money.md) restated minute by minute for a 60-minute class with the
# default rules: held after 20 minutes of the mentor and a learner together (the shorter of
# 20 min and 50 %), attended after 5 minutes with the mentor, a mentor who waited 10 minutes
# with nobody there is paid for no-shows. Only minutes in [start, End) count, never past the
# scheduled end.
HELD, ATTEND, WAIT = 20, 5, 10


def expected_outcome(mentor: set[int], learners: dict[int, set[int]], moved: set[int], at: int) -> dict[int, str]:
    window = set(range(min(at, 60)))  # [start, End) and never past the scheduled end
    m = mentor & window
    together = {u: len(m & mins) for u, mins in learners.items()}
    alone = {u: len(mins & window) for u, mins in learners.items()}
    if any(v >= HELD for v in together.values()):
        return {
            u: "attended" if together[u] >= ATTEND else "refund" if alone[u] >= ATTEND or u in moved else "no_show"
            for u in learners
        }
    if len(m) >= WAIT and not any(alone.values()):
        return {u: "refund" if u in moved else "no_show" for u in learners}
    return dict.fromkeys(learners, "refund")


def mentor_waited(spans: list[tuple[int, int]], at: int) -> bool:
    return len({m for a, z in spans for m in range(a, z)} & set(range(min(at, 60)))) >= WAIT


class RecordingProvider(SandboxProvider):
    """The sandbox, remembering every call: the provider's side of "provider and ledger agree"."""

    def __init__(self) -> None:
        self.charged: list[str] = []
        self.refunded: list[str] = []

    def charge(self, *, amount_cents: int, currency: str, key: str) -> PaymentResult:
        self.charged.append(key)
        return super().charge(amount_cents=amount_cents, currency=currency, key=key)

    def refund(self, *, charge_reference: str, amount_cents: int, currency: str) -> PaymentResult:
        self.refunded.append(charge_reference)
        return super().refund(charge_reference=charge_reference, amount_cents=amount_cents, currency=currency)


def test_money_state_machine(template_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = RecordingProvider()
    monkeypatch.setattr(charges, "provider", recorder)
    loop = asyncio.new_event_loop()
    if PG_URL:
        url = loop.run_until_complete(_clone_pg(template_db))
    else:
        target = tmp_path / "sm.db"
        shutil.copy(template_db, target)
        url = f"sqlite+aiosqlite:///{target}"
    settings = Settings(data_dir=tmp_path, database_url=url, public_url="http://testserver")
    db = Database(url)
    ctx = Context(db, MemoryBroker(), Mailer(outbox=tmp_path / "outbox", sender="t@example.com"), settings)
    run = loop.run_until_complete
    run(update_settings(db, None, PlatformSettingsUpdate(min_payout_cents=100, platform_fee_percent=15)))  # type: ignore[arg-type]

    class Money(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            tag = uuid.uuid4().hex[:8]

            async def make() -> tuple[int, list[int]]:
                async with db.write() as s:
                    users = [
                        User(
                            email=f"{r}{i}-{tag}@sm.example",
                            password_hash="x",
                            full_name=f"{r} {i}",
                            role=Role(r),
                            domains=[],
                            skills=[],
                            interests=[],
                            preferences={},
                            email_verified_at=datetime.now(timezone.utc),
                        )
                        for i, r in enumerate(["mentor", "admin"] + ["learner"] * 4)
                    ]
                    s.add_all(users)
                    await s.flush()
                    return users[0].id, users[1].id, [u.id for u in users[2:]]

            mentor_id, admin_id, learner_ids = run(make())
            self.mentor = Who(mentor_id, "mentor")
            self.admin_id = admin_id
            self.learners = [Who(i, "learner") for i in learner_ids]
            self.sessions: list[int] = []
            self.active: dict[int, set[int]] = {}  # session id -> learner ids with an active booking
            self.open: dict[int, bool] = {}  # still bookable (scheduled)
            # session id -> (user id -> [(from, to)] minutes relative to the start): what the SFU will have seen
            self.timeline: dict[int, dict[int, list[tuple[int, int]]]] = {}
            self.moved: dict[int, set[int]] = {}  # session id -> learners whose booked time the mentor moved
            self.refund_owed: set[int] = set()  # booking ids the model says must be refunded
            self.settled: dict[int, dict[int, str]] = {}  # session id -> learner id -> booking status
            self.new_session(2, 1500)

        # ---------------------------------------------------------------- rules
        @rule(capacity=st.integers(1, 3), price=st.sampled_from([0, 999, 1500, 4000]))
        def new_session(self, capacity: int, price: int) -> None:
            starts = datetime.now(timezone.utc) + timedelta(hours=48)
            data = SessionCreate(title="SM", domain="Testing", price_cents=price, capacity=capacity, starts_at=starts)
            d = run(catalog.create_session(ctx, self.mentor, data))
            run(catalog.publish_session(ctx, self.mentor, d.id))
            self.sessions.append(d.id)
            self.active[d.id] = set()
            self.open[d.id] = True
            self.timeline[d.id] = {}
            self.moved[d.id] = set()

        @rule(li=st.integers(0, 3), si=st.integers(0, 5))
        def book(self, li: int, si: int) -> None:
            sid = self.sessions[si % len(self.sessions)]
            learner = self.learners[li]
            try:
                run(bookings.create_booking(ctx, learner, sid))
            except (NotFound, Conflict) as err:
                cap = run(self._capacity(sid))
                assert not self.open[sid] or learner.id in self.active[sid] or len(self.active[sid]) >= cap, err.code
                return
            assert self.open[sid] and learner.id not in self.active[sid]
            self.active[sid].add(learner.id)

        @rule(li=st.integers(0, 3), si=st.integers(0, 5), refund=st.booleans())
        def cancel_booking(self, li: int, si: int, refund: bool) -> None:
            sid = self.sessions[si % len(self.sessions)]
            learner = self.learners[li]
            run(update_settings(db, None, PlatformSettingsUpdate(refund_window_hours=0 if refund else 720)))  # type: ignore[arg-type]
            booking_id = run(self._booking_of(sid, learner.id))
            if booking_id is None:
                return
            try:
                out = run(bookings.cancel_booking(ctx, learner, booking_id))
            except Conflict as err:
                assert not self.open[sid], err.code
                return
            owed = refund or learner.id in self.moved[sid]  # a moved class refunds whatever the window
            assert out.refund_cents == (out.booking.price_cents if owed else 0)
            self.active[sid].discard(learner.id)
            self.moved[sid].discard(learner.id)

        @rule(si=st.integers(0, 5))
        def cancel_session(self, si: int) -> None:
            sid = self.sessions[si % len(self.sessions)]
            try:
                res = run(catalog.cancel_session(ctx, self.mentor, sid))
            except Conflict as err:
                assert err.code == "invalid_status" and not self.open[sid]
                return
            assert res.refunded_bookings == len(self.active[sid])
            self.active[sid] = set()
            self.moved[sid] = set()
            self.open[sid] = False

        def _open_sessions(self) -> list[int]:
            return [sid for sid in getattr(self, "sessions", []) if self.open[sid]]

        def _in_room(self, sid: int, uid: int, start: int, minutes: int) -> None:
            self.timeline[sid].setdefault(uid, []).append((start, start + minutes))

        @precondition(lambda self: bool(self._open_sessions()))
        @rule(li=st.integers(0, 3), si=st.integers(0, 5), start=st.integers(-30, 80), minutes=st.integers(1, 70))
        def attend(self, li: int, si: int, start: int, minutes: int) -> None:
            """A learner will have been in the room from ``start`` minutes after the class's start
            (negative: before it) for ``minutes`` (written as the SFU's join/leave when it ends)."""
            sessions = self._open_sessions()
            self._in_room(sessions[si % len(sessions)], self.learners[li].id, start, minutes)

        @precondition(lambda self: bool(self._open_sessions()))
        @rule(si=st.integers(0, 5), start=st.integers(-30, 80), minutes=st.integers(1, 70))
        def mentor_attends(self, si: int, start: int, minutes: int) -> None:
            sessions = self._open_sessions()
            self._in_room(sessions[si % len(sessions)], self.mentor.id, start, minutes)

        @precondition(lambda self: bool(self._open_sessions()))
        @rule(si=st.integers(0, 5), hours=st.sampled_from([-46, -24, 3, 72]))
        def mentor_moves(self, si: int, hours: int) -> None:
            """The mentor moves a sold class (into the refund window, or later): the booked learners'
            terms no longer hold; each may cancel for a full refund, and is refunded if absent."""
            sessions = self._open_sessions()
            sid = sessions[si % len(sessions)]

            async def starts() -> datetime:
                async with db.read() as s:
                    return (await s.get(Session, sid)).starts_at  # type: ignore[union-attr]

            new_start = run(starts()) + timedelta(hours=hours)
            if new_start <= utcnow() + timedelta(minutes=5):
                return
            run(catalog.update_session(ctx, self.mentor, sid, SessionUpdate(starts_at=new_start)))
            self.moved[sid] |= self.active[sid]

        @rule(si=st.integers(0, 5), only_open=st.booleans(), at=st.sampled_from([1, 5, 12, 25, 60, 75]))
        def end(self, si: int, only_open: bool, at: int) -> None:
            """The class ends ``at`` minutes after its start (End pressed, or the scheduler) and is
            settled from who was in the room. (Mostly an open session; sometimes any, to see a
            second end refused.)"""
            sessions = self._open_sessions() if only_open and self._open_sessions() else self.sessions
            sid = sessions[si % len(sessions)]
            start = utcnow() - timedelta(minutes=at)

            async def happen() -> dict[int, int]:
                async with db.write() as s:
                    await s.execute(update(Session).where(Session.id == sid).values(starts_at=start))
                    booked = {
                        b.learner_id: b
                        for b in (
                            await s.scalars(
                                select(Booking).where(
                                    Booking.session_id == sid, Booking.status == BookingStatus.confirmed
                                )
                            )
                        ).all()
                    }
                    # Time travel keeps the terms (late cancellers' too); a mentor's move does not.
                    for b in (await s.scalars(select(Booking).where(Booking.session_id == sid))).all():
                        moved = b.learner_id in self.moved[sid] and b.status == BookingStatus.confirmed
                        b.booked_starts_at = start + (timedelta(hours=1) if moved else timedelta(0))
                if not self.open[sid]:
                    return {}
                for uid, spans in self.timeline[sid].items():
                    for a, z in spans:
                        role = "mentor" if uid == self.mentor.id else "learner"
                        await attendance.record_join(ctx, sid, uid, role, f"pe-{uid}", start + timedelta(minutes=a))
                        await attendance.record_leave(ctx, sid, uid, start + timedelta(minutes=z))
                return {uid: b.id for uid, b in booked.items()}

            booking_of = run(happen())
            try:
                out = run(settlement.settle_session(ctx, sid))
            except Conflict as err:
                assert err.code == "invalid_status" and not self.open[sid]
                return
            assert self.open[sid]
            self.open[sid] = False
            expected = expected_outcome(
                {m for a, z in self.timeline[sid].get(self.mentor.id, []) for m in range(a, z)},
                {uid: {m for a, z in self.timeline[sid].get(uid, []) for m in range(a, z)} for uid in self.active[sid]},
                self.moved[sid] & self.active[sid],
                at,
            )
            took_place = any(v != "refund" for v in expected.values()) or (
                not expected and mentor_waited(self.timeline[sid].get(self.mentor.id, []), at)
            )
            assert out.took_place == took_place, (out, expected, self.timeline[sid])
            self.refund_owed |= {booking_of[uid] for uid, v in expected.items() if v == "refund"}
            self.settled[sid] = {uid: v for uid, v in expected.items() if v != "refund"}
            self.active[sid] = set(self.settled[sid])

        @rule(
            price=st.sampled_from([0, 1500, 4000]),
            booked=st.integers(1, 15),
            came=st.integers(0, 15),
            mentor=st.sampled_from([(0, 0), (-10, 4), (0, 3), (-5, 20), (0, 60), (30, 30), (-20, 70)]),
            at=st.sampled_from([1, 25, 60]),
            reported=st.integers(0, 15),
        )
        def whole_class(
            self, price: int, booked: int, came: int, mentor: tuple[int, int], at: int, reported: int
        ) -> None:
            """A class from publishing to its end in one step (so that ends with seats are common):
            learners in the ``booked`` bit mask book, those also in ``came`` join the room at its
            start for the hour, the mentor is there from ``mentor[0]`` for ``mentor[1]`` minutes,
            End comes ``at`` minutes in; those in ``reported`` report a problem right after it."""
            self.new_session(4, price)
            sid = self.sessions[-1]
            for i, learner in enumerate(self.learners):
                if booked >> i & 1:
                    run(bookings.create_booking(ctx, learner, sid))
                    self.active[sid].add(learner.id)
                    if came >> i & 1:
                        self._in_room(sid, learner.id, 0, 60)
            if mentor[1]:
                self._in_room(sid, self.mentor.id, *mentor)
            self.end(len(self.sessions) - 1, False, at)
            for i, learner in enumerate(self.learners):
                if reported >> i & 1 and learner.id in self.settled.get(sid, {}):
                    self._report(sid, learner)

        @rule(hours=st.sampled_from([1, 49, 24 * 40]))
        def time_passes(self, hours: int) -> None:
            run(settlement.release_due(ctx, utcnow() + timedelta(hours=hours)))
            if hours < 24 * 31:
                return

            async def pending_after_hold() -> list[int]:
                """Charges of settled classes still neither released nor refunded, no report holding them."""
                async with db.read() as s:
                    keys = set((await s.scalars(select(Journal.idempotency_key))).all())
                    rows = (
                        await s.execute(
                            select(Booking.id, Booking.price_cents)
                            .join(Session, Session.id == Booking.session_id)
                            .where(Session.status.in_((SessionStatus.completed, SessionStatus.cancelled)))
                        )
                    ).all()
                    held = set(
                        (
                            await s.scalars(
                                select(BookingReport.booking_id).where(BookingReport.status == ReportStatus.open)
                            )
                        ).all()
                    )
                return [
                    bid
                    for bid, price in rows
                    if price > 0
                    and bid not in held
                    and f"release:booking:{bid}" not in keys
                    and f"refund:booking:{bid}" not in keys
                ]

            assert run(pending_after_hold()) == []

        @precondition(lambda self: any(getattr(self, "settled", {}).values()))
        @rule(i=st.integers(0, 20))
        def report(self, i: int) -> None:
            """A learner of a class that took place reports a problem (maybe after the hold)."""
            seats = [(sid, uid) for sid, by in self.settled.items() for uid in by]
            sid, uid = seats[i % len(seats)]
            self._report(sid, next(lr for lr in self.learners if lr.id == uid))

        def _report(self, sid: int, learner: Who) -> None:
            async def booking() -> int | None:
                async with db.read() as s:
                    return await s.scalar(
                        select(Booking.id).where(
                            Booking.session_id == sid,
                            Booking.learner_id == learner.id,
                            Booking.status != BookingStatus.cancelled,
                        )
                    )

            bid = run(booking())
            if bid is None:
                return
            try:
                run(reports.create(ctx, learner.id, bid, "Something went wrong"))
            except Conflict as err:
                assert err.code in ("already_reported", "report_window_closed"), err.code

        @rule(action=st.sampled_from(["refund", "release"]))
        def resolve(self, action: str) -> None:
            async def oldest_open() -> int | None:
                async with db.read() as s:
                    return await s.scalar(
                        select(BookingReport.id)
                        .where(BookingReport.status == ReportStatus.open)
                        .order_by(BookingReport.id)
                    )

            rid = run(oldest_open())
            if rid is not None:
                out = run(reports.resolve(ctx, self.admin_id, rid, action))  # type: ignore[arg-type]
                assert out.status == ("refunded" if action == "refund" else "released")

        @precondition(lambda self: bool(self.sessions))
        @rule(amount=st.sampled_from([50, 100, 1000, 1275, 5000]), key=st.sampled_from([None, "a", "b"]))
        def payout(self, amount: int, key: str | None) -> None:
            async def available() -> int:
                async with db.read() as s:
                    return await ledger.balance(s, ledger.mentor_available(self.mentor.id))

            before = run(available())
            try:
                _, created = run(earnings.request_payout(ctx, self.mentor.id, amount, "USD", key))
            except (Invalid, Conflict, Unprocessable):
                assert run(available()) == before
                return
            assert run(available()) == before - (amount if created else 0)

        # ---------------------------------------------------------------- invariants
        async def _capacity(self, sid: int) -> int:
            async with db.read() as s:
                return int(await s.scalar(select(Session.capacity).where(Session.id == sid)) or 0)

        async def _booking_of(self, sid: int, learner_id: int) -> int | None:
            async with db.read() as s:
                return await s.scalar(
                    select(Booking.id).where(
                        Booking.session_id == sid,
                        Booking.learner_id == learner_id,
                        Booking.status == BookingStatus.confirmed,
                    )
                )

        @invariant()
        def seats_match_bookings(self) -> None:
            if not getattr(self, "sessions", None):
                return

            async def check() -> None:
                async with db.read() as s:
                    for sid in self.sessions:
                        sess = await s.get(Session, sid)
                        assert sess is not None
                        n = await s.scalar(
                            select(func.count(Booking.id)).where(
                                Booking.session_id == sid, Booking.status != BookingStatus.cancelled
                            )
                        )
                        assert 0 <= sess.seats_taken <= sess.capacity
                        assert sess.seats_taken == n == len(self.active[sid]), (sid, sess.seats_taken, n)
                        learners = set(
                            (
                                await s.scalars(
                                    select(Booking.learner_id).where(
                                        Booking.session_id == sid, Booking.status != BookingStatus.cancelled
                                    )
                                )
                            ).all()
                        )
                        assert learners == self.active[sid]
                        assert (sess.status == SessionStatus.scheduled) == self.open[sid]
                        if sid in self.settled:
                            statuses = {
                                b.learner_id: b.status.value
                                for b in (
                                    await s.scalars(
                                        select(Booking).where(
                                            Booking.session_id == sid, Booking.status != BookingStatus.cancelled
                                        )
                                    )
                                ).all()
                            }
                            assert statuses == self.settled[sid], (statuses, self.settled[sid])

            run(check())

        @invariant()
        def ledger_balances(self) -> None:
            async def check() -> None:
                async with db.read() as s:
                    tb = await ledger.trial_balance(s)
                assert all(v == 0 for v in tb["totals"].values()), tb["totals"]
                assert tb["negative_accounts"] == {}, tb["negative_accounts"]
                assert tb["unbalanced_journals"] == []
                async with db.read() as s:
                    keys = set((await s.scalars(select(Journal.idempotency_key))).all())
                    released = [k.rsplit(":", 1)[1] for k in keys if k and k.startswith("release:booking:")]
                    assert not any(f"refund:booking:{b}" in keys for b in released), "refunded and released"
                    mentor = self.mentor.id
                    got = await ledger.balance(s, ledger.mentor_available(mentor))
                    paid = await ledger.balance(s, ledger.mentor_paid(mentor))
                    into = await s.scalar(
                        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
                        .join(Journal, Journal.id == LedgerEntry.journal_id)
                        .where(Journal.kind == "release", LedgerEntry.account == ledger.mentor_available(mentor))
                    )
                assert got == int(into or 0) - paid >= 0

            run(check())

        @invariant()
        def money_follows_the_model(self) -> None:
            if not getattr(self, "sessions", None):
                return

            async def check() -> None:
                async with db.read() as s:
                    journals = (await s.execute(select(Journal.kind, Journal.booking_id, Journal.reference))).all()
                    prices = dict((await s.execute(select(Booking.id, Booking.price_cents))).all())
                    released_from = set(
                        (
                            await s.scalars(
                                select(Session.status)
                                .join(Booking, Booking.session_id == Session.id)
                                .join(Journal, Journal.booking_id == Booking.id)
                                .where(Journal.kind == "release")
                            )
                        ).all()
                    )
                refunded = {b for k, b, _ in journals if k == "refund"}
                # every learner owed a refund by the model got it
                assert {b for b in self.refund_owed if prices.get(b)} <= refunded
                # a mentor is paid only for classes that took place
                assert released_from <= {SessionStatus.completed}, released_from
                # the provider saw exactly what the ledger recorded
                assert sorted(recorder.charged) == sorted(f"booking:{b}" for k, b, _ in journals if k == "charge")
                assert sorted(recorder.refunded) == sorted(r for k, _, r in journals if k == "charge" and _ in refunded)

            run(check())

    Money.TestCase.settings = hyp_settings(
        max_examples=20, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
    )
    try:
        Money.TestCase().runTest()
    finally:
        run(db.dispose())
        if PG_URL:
            run(_drop_pg(url))
        loop.close()
