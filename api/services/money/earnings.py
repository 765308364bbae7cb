"""Mentor earnings (balances from the ledger) and payouts through the sandbox provider.

A payout is at most the available balance and at least ``min_payout_cents``;
the balance check and the payout journal share one write transaction with
the mentor's available account locked, so N concurrent payouts with funds for
k succeed exactly k times. ``Idempotency-Key`` replays return the same payout.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.context import Context
from api.models import Journal, LedgerEntry, Notification, Payout, PayoutStatus
from api.schemas.earnings import EarningsOut, EntryOut, PayoutOut
from api.services import accounts, notifications
from api.services.money import ledger
from api.services.bookings import check_key
from api.services.errors import Invalid, Unprocessable
from api.services.money.provider import provider
from api.services.settings_store import get_all as platform_settings


def payout_out(p: Payout, reference: str = "") -> PayoutOut:
    return PayoutOut(
        id=p.id,
        amount_cents=p.amount_cents,
        currency=p.currency,
        status=p.status.value,
        reference=reference,
        test_mode=provider.test_mode,
        created_at=p.created_at,
    )


async def earnings(ctx: Context, mentor_id: int, currency: str = "USD", *, recent: int = 20) -> EarningsOut:
    """Total earned (released), pending (sessions not completed), available, paid out,
    payout history and the latest ledger entries of the mentor's accounts."""
    minimum = int((await platform_settings(ctx.db))["min_payout_cents"])
    accounts = [ledger.mentor_pending(mentor_id), ledger.mentor_available(mentor_id), ledger.mentor_paid(mentor_id)]
    async with ctx.db.read() as s:
        bal = await ledger.mentor_balances(s, mentor_id, currency)
        currencies = await ledger.mentor_currencies(s, mentor_id)
        payouts = (
            await s.execute(
                select(Payout, Journal.reference)
                .outerjoin(Journal, Journal.id == Payout.journal_id)
                .where(Payout.mentor_id == mentor_id)
                .order_by(Payout.id.desc())
                .limit(50)
            )
        ).all()
        entries = (
            await s.execute(
                select(LedgerEntry, Journal)
                .join(Journal, Journal.id == LedgerEntry.journal_id)
                .where(LedgerEntry.account.in_(accounts))
                .order_by(LedgerEntry.id.desc())
                .limit(recent)
            )
        ).all()
    return EarningsOut(
        currency=currency,
        currencies=currencies or [currency],
        total_earned_cents=bal.total_earned,
        pending_cents=bal.pending,
        available_cents=bal.available,
        paid_out_cents=bal.paid_out,
        min_payout_cents=minimum,
        test_mode=provider.test_mode,
        payouts=[payout_out(p, ref or "") for p, ref in payouts],
        recent_entries=[
            EntryOut(
                journal_id=j.id,
                kind=j.kind,
                account=e.account,
                amount_cents=e.amount_cents,
                currency=e.currency,
                session_id=j.session_id,
                booking_id=j.booking_id,
                created_at=e.created_at,
            )
            for e, j in entries
        ],
    )


def _mismatch() -> Unprocessable:
    return Unprocessable("This Idempotency-Key was already used with a different request.", code="idempotency_mismatch")


async def _replay(ctx: Context, mentor_id: int, key: str, amount: int, currency: str) -> PayoutOut | None:
    async with ctx.db.read() as s:
        row = (
            await s.execute(
                select(Payout, Journal.reference)
                .outerjoin(Journal, Journal.id == Payout.journal_id)
                .where(Payout.mentor_id == mentor_id, Payout.idempotency_key == key)
            )
        ).first()
    if row is None:
        return None
    p, ref = row
    if p.amount_cents != amount or p.currency != currency:
        raise _mismatch()
    return payout_out(p, ref or "")


async def request_payout(
    ctx: Context, mentor_id: int, amount_cents: int, currency: str = "USD", idempotency_key: str | None = None
) -> tuple[PayoutOut, bool]:
    """Pay ``amount_cents`` of the available balance out (sandbox: paid at once).

    Returns (payout, created). 400 ``below_minimum``; 409 ``insufficient_funds``;
    422 ``idempotency_mismatch`` for a reused key with another amount."""
    key = check_key(idempotency_key)
    if key:
        replay = await _replay(ctx, mentor_id, key, amount_cents, currency)
        if replay is not None:
            return replay, False
    minimum = int((await platform_settings(ctx.db))["min_payout_cents"])
    if amount_cents < minimum:
        raise Invalid(
            f"The minimum payout is {minimum / 100:.2f} {currency}.",
            code="below_minimum",
            fields={"amount_cents": f"at least {minimum}"},
        )
    available = ledger.mentor_available(mentor_id)
    notes: list[Notification] = []
    try:
        async with ctx.db.write() as s:
            await accounts.ensure_verified(s, mentor_id, ctx.settings)  # money goes to a reachable owner
            await ledger.lock_accounts(s, [available], currency)
            if key:
                existing = await s.scalar(
                    select(Payout).where(Payout.mentor_id == mentor_id, Payout.idempotency_key == key)
                )
                if existing is not None:
                    if existing.amount_cents != amount_cents or existing.currency != currency:
                        raise _mismatch()
                    j = await s.get(Journal, existing.journal_id) if existing.journal_id else None
                    return payout_out(existing, j.reference if j else ""), False
            if await ledger.balance(s, available, currency) < amount_cents:
                raise ledger.insufficient_funds(available)
            payout = Payout(
                mentor_id=mentor_id,
                amount_cents=amount_cents,
                currency=currency,
                status=PayoutStatus.requested,
                idempotency_key=key,
            )
            s.add(payout)
            await s.flush()
            sent = provider.payout(amount_cents=amount_cents, currency=currency, key=f"payout:{payout.id}")
            journal = await ledger.post(
                s,
                "payout",
                [(available, -amount_cents), (ledger.mentor_paid(mentor_id), amount_cents)],
                currency=currency,
                reference=sent.reference,
                idempotency_key=f"payout:{payout.id}",
            )
            assert journal is not None
            payout.journal_id = journal.id
            payout.status = PayoutStatus.paid
            notes.append(
                notifications.add(
                    s,
                    mentor_id,
                    "payout.status",
                    f"Payout sent: {amount_cents / 100:.2f} {currency}",
                    f"Sandbox payout {sent.reference} (test mode, no real money moved).",
                    "/mentor/earnings",
                )
            )
            await s.flush()
            out = payout_out(payout, sent.reference)
    except IntegrityError:
        if key:
            replay = await _replay(ctx, mentor_id, key, amount_cents, currency)
            if replay is not None:
                return replay, False
        raise
    await notifications.push(ctx.broker, notes)
    return out, True
