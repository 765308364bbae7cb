"""Double-entry ledger: every money movement is one balanced Journal of LedgerEntry legs.

Sign convention: ``amount_cents > 0`` puts money INTO an account, ``< 0`` takes
it out; a journal's legs sum to zero (checked before insert). An account's
balance is the SUM of its entries (per currency), never a stored counter.
Internal accounts may never go negative: checked inside the same write
transaction after the legs are added (SQLite: the write lock; PostgreSQL: a
transaction-scoped advisory lock per debited account serializes the check).
Only ``external:*`` accounts (the world behind the payment provider) go negative.

Accounts:
  external:sandbox            money from/to the outside world (negative = money in)
  mentor:{id}:pending         the mentor's share of bookings not yet released (class not held
                              yet, or within the hold after it, or under an open report)
  mentor:{id}:available       earned, not yet paid out
  mentor:{id}:paid            paid out (cumulative)
  platform:fees_pending       the platform fee of sessions not yet completed
  platform:fees               the platform's earned fees

Journals (kind, idempotency key):
  charge   charge:booking:{id}     external -P, mentor pending +M, fees_pending +F
  refund   refund:booking:{id}     the exact reverse of the booking's charge
  release  release:booking:{id}    pending -> available, fees_pending -> fees (after the hold;
                                   ``release:session:{id}`` in data written before the hold existed)
  payout   payout:{id}             mentor available -> mentor paid

Entries and journals are immutable (ORM listeners below refuse UPDATE/DELETE).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession

from api.context import Context
from api.models import Journal, LedgerEntry
from api.services.errors import Conflict
from api.services.money.provider import EXTERNAL_ACCOUNT

PLATFORM_FEES = "platform:fees"
PLATFORM_FEES_PENDING = "platform:fees_pending"


def mentor_pending(mentor_id: int) -> str:
    return f"mentor:{mentor_id}:pending"


def mentor_available(mentor_id: int) -> str:
    return f"mentor:{mentor_id}:available"


def mentor_paid(mentor_id: int) -> str:
    return f"mentor:{mentor_id}:paid"


def is_external(account: str) -> bool:
    return account.startswith("external:")


def fee_split(price_cents: int, fee_percent: float) -> tuple[int, int]:
    """(platform fee, mentor share) of a price; the fee rounds half up to the cent."""
    basis_points = round(fee_percent * 100)
    fee = (price_cents * basis_points + 5000) // 10000
    fee = max(0, min(fee, price_cents))
    return fee, price_cents - fee


# ---------------------------------------------------------------- immutability


class ImmutableLedger(RuntimeError):
    """Raised on any attempt to change or delete a journal or ledger entry."""


def _refuse(_mapper: Any, _conn: Any, target: Any) -> None:
    raise ImmutableLedger(f"{type(target).__name__} rows are immutable; post a reversing journal")


for _model in (LedgerEntry, Journal):
    event.listen(_model, "before_update", _refuse)
    event.listen(_model, "before_delete", _refuse)

_IMMUTABLE_TABLES = frozenset({LedgerEntry.__tablename__, Journal.__tablename__})


@event.listens_for(OrmSession, "do_orm_execute")
def _refuse_bulk(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None and getattr(table, "name", None) in _IMMUTABLE_TABLES:
            raise ImmutableLedger("journals and ledger entries are immutable")


# ---------------------------------------------------------------- posting


class UnbalancedJournal(AssertionError):
    pass


def insufficient_funds(account: str) -> Conflict:
    return Conflict("Not enough funds for this operation.", code="insufficient_funds", fields={"account": account})


def _lock_key(account: str, currency: str) -> int:
    digest = hashlib.blake2b(f"{account}|{currency}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_accounts(s: AsyncSession, accounts: Iterable[str], currency: str) -> None:
    """Serialize writers of these accounts until the transaction ends.

    SQLite needs nothing (one writer at a time); PostgreSQL takes
    transaction-scoped advisory locks in a fixed order (no deadlocks)."""
    if s.get_bind().dialect.name != "postgresql":
        return
    for account in sorted(set(accounts)):
        await s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(account, currency)})


async def balance(s: AsyncSession, account: str, currency: str = "USD") -> int:
    total = await s.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account == account, LedgerEntry.currency == currency
        )
    )
    return int(total or 0)


async def journal_by_key(s: AsyncSession, key: str) -> Journal | None:
    return await s.scalar(select(Journal).where(Journal.idempotency_key == key))


async def post(
    s: AsyncSession,
    kind: str,
    legs: list[tuple[str, int]],
    *,
    currency: str,
    reference: str = "",
    idempotency_key: str | None = None,
    session_id: int | None = None,
    booking_id: int | None = None,
) -> Journal | None:
    """Record one balanced journal inside the caller's write transaction.

    Zero legs are dropped; a journal with no legs is not written (returns None).
    With ``idempotency_key``, a journal already posted under that key is returned
    instead of posting again. Raises 409 ``insufficient_funds`` (rolling the
    whole transaction back) if an internal account would go negative.
    """
    merged: dict[str, int] = defaultdict(int)
    for account, amount in legs:
        merged[account] += int(amount)
    entries = [(a, amt) for a, amt in merged.items() if amt != 0]
    if sum(amt for _, amt in entries) != 0:
        raise UnbalancedJournal(f"journal {kind} does not balance: {entries}")
    debited = [a for a, amt in entries if amt < 0 and not is_external(a)]
    await lock_accounts(s, debited, currency)
    if idempotency_key is not None:
        existing = await journal_by_key(s, idempotency_key)
        if existing is not None:
            return existing
    if not entries:
        return None
    journal = Journal(
        kind=kind,
        reference=reference[:120],
        idempotency_key=idempotency_key,
        session_id=session_id,
        booking_id=booking_id,
    )
    s.add(journal)
    await s.flush()
    s.add_all(LedgerEntry(journal_id=journal.id, account=a, amount_cents=amt, currency=currency) for a, amt in entries)
    await s.flush()
    for account in debited:
        if await balance(s, account, currency) < 0:
            raise insufficient_funds(account)
    return journal


# ---------------------------------------------------------------- money movements


def charge_legs(mentor_id: int, price_cents: int, fee_percent: float) -> list[tuple[str, int]]:
    fee, share = fee_split(price_cents, fee_percent)
    return [(EXTERNAL_ACCOUNT, -price_cents), (mentor_pending(mentor_id), share), (PLATFORM_FEES_PENDING, fee)]


async def record_charge(
    s: AsyncSession,
    *,
    booking_id: int,
    session_id: int,
    mentor_id: int,
    price_cents: int,
    currency: str,
    fee_percent: float,
    reference: str,
) -> Journal | None:
    """The learner paid ``price_cents`` for booking ``booking_id`` (inside the booking's transaction)."""
    if price_cents <= 0:
        return None
    return await post(
        s,
        "charge",
        charge_legs(mentor_id, price_cents, fee_percent),
        currency=currency,
        reference=reference,
        idempotency_key=f"charge:booking:{booking_id}",
        session_id=session_id,
        booking_id=booking_id,
    )


async def record_refund(s: AsyncSession, booking_id: int, reference: str = "") -> Journal | None:
    """Reverse booking ``booking_id``'s charge exactly (idempotent; None if nothing was charged)."""
    charge = await journal_by_key(s, f"charge:booking:{booking_id}")
    if charge is None:
        return None
    rows = (await s.scalars(select(LedgerEntry).where(LedgerEntry.journal_id == charge.id))).all()
    if not rows:
        return None
    return await post(
        s,
        "refund",
        [(e.account, -e.amount_cents) for e in rows],
        currency=rows[0].currency,
        reference=reference or charge.reference,
        idempotency_key=f"refund:booking:{booking_id}",
        session_id=charge.session_id,
        booking_id=booking_id,
    )


async def record_release(s: AsyncSession, booking_id: int, reference: str = "") -> Journal | None:
    """Inside a write transaction: move booking ``booking_id``'s share out of the hold
    (mentor pending -> available, fees pending -> fees). Idempotent; None if nothing
    was charged. Settlement decides when (after the hold, never while a report is open)."""
    charge = await journal_by_key(s, f"charge:booking:{booking_id}")
    if charge is None:
        return None
    rows = (await s.scalars(select(LedgerEntry).where(LedgerEntry.journal_id == charge.id))).all()
    legs: list[tuple[str, int]] = []
    for e in rows:
        if e.account == PLATFORM_FEES_PENDING:
            legs += [(PLATFORM_FEES_PENDING, -e.amount_cents), (PLATFORM_FEES, e.amount_cents)]
        elif e.account.startswith("mentor:") and e.account.endswith(":pending"):
            mentor = e.account.removesuffix(":pending")
            legs += [(e.account, -e.amount_cents), (f"{mentor}:available", e.amount_cents)]
    if not legs:
        return None
    return await post(
        s,
        "release",
        legs,
        currency=rows[0].currency,
        reference=reference or f"booking {booking_id} earnings released",
        idempotency_key=f"release:booking:{booking_id}",
        session_id=charge.session_id,
        booking_id=booking_id,
    )


# ---------------------------------------------------------------- reading


async def paid_in(s: AsyncSession, journal_id: int) -> int:
    """What journal ``journal_id`` moved across the provider (its external leg, unsigned)."""
    total = await s.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.journal_id == journal_id, LedgerEntry.account.startswith("external:")
        )
    )
    return abs(int(total or 0))


@dataclass(frozen=True)
class MentorBalances:
    currency: str
    pending: int
    available: int
    paid_out: int

    @property
    def total_earned(self) -> int:
        return self.available + self.paid_out


async def mentor_balances(s: AsyncSession, mentor_id: int, currency: str = "USD") -> MentorBalances:
    return MentorBalances(
        currency,
        await balance(s, mentor_pending(mentor_id), currency),
        await balance(s, mentor_available(mentor_id), currency),
        await balance(s, mentor_paid(mentor_id), currency),
    )


async def mentor_currencies(s: AsyncSession, mentor_id: int) -> list[str]:
    prefix = f"mentor:{mentor_id}:"
    rows = await s.scalars(
        select(LedgerEntry.currency)
        .where(LedgerEntry.account.in_([prefix + "pending", prefix + "available", prefix + "paid"]))
        .distinct()
    )
    return sorted(set(rows.all()))


def serialize_journal(j: Journal, entries: list[LedgerEntry]) -> dict[str, Any]:
    return {
        "id": j.id,
        "kind": j.kind,
        "reference": j.reference,
        "session_id": j.session_id,
        "booking_id": j.booking_id,
        "created_at": j.created_at,
        "entries": [{"account": e.account, "amount_cents": e.amount_cents, "currency": e.currency} for e in entries],
    }


async def transactions(
    ctx: Context,
    *,
    page: int = 1,
    page_size: int = 50,
    kind: str | None = None,
    account: str | None = None,
    session_id: int | None = None,
) -> dict[str, Any]:
    """The admin transaction log: journals newest first, each with its entries.

    Filters: journal ``kind``, an ``account`` (exact, or a prefix ending in ``:``
    such as ``mentor:3:``), ``session_id``. Returns {items, total, page, page_size}."""
    page_size = max(1, min(page_size, 200))
    page = max(1, page)
    q = select(Journal)
    if kind:
        q = q.where(Journal.kind == kind)
    if session_id:
        q = q.where(Journal.session_id == session_id)
    if account:
        cond = (
            LedgerEntry.account.startswith(account, autoescape=True)
            if account.endswith(":")
            else LedgerEntry.account == account
        )
        q = q.where(Journal.id.in_(select(LedgerEntry.journal_id).where(cond)))
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
        journals = (
            await s.scalars(q.order_by(Journal.id.desc()).limit(page_size).offset((page - 1) * page_size))
        ).all()
        ids = [j.id for j in journals]
        entries: dict[int, list[LedgerEntry]] = defaultdict(list)
        if ids:
            for e in (
                await s.scalars(select(LedgerEntry).where(LedgerEntry.journal_id.in_(ids)).order_by(LedgerEntry.id))
            ).all():
                entries[e.journal_id].append(e)
    return {
        "items": [serialize_journal(j, entries[j.id]) for j in journals],
        "total": total,
        "page": page,
        "page_size": page_size,
    }


async def trial_balance(s: AsyncSession) -> dict[str, Any]:
    """Sum of all entries per currency (must be 0) and any negative internal account."""
    sums = (
        await s.execute(select(LedgerEntry.currency, func.sum(LedgerEntry.amount_cents)).group_by(LedgerEntry.currency))
    ).all()
    per_account = (
        await s.execute(
            select(LedgerEntry.account, LedgerEntry.currency, func.sum(LedgerEntry.amount_cents)).group_by(
                LedgerEntry.account, LedgerEntry.currency
            )
        )
    ).all()
    negative = {f"{a}|{c}": int(v) for a, c, v in per_account if not is_external(a) and int(v) < 0}
    unbalanced_journals = (
        (
            await s.execute(
                select(LedgerEntry.journal_id)
                .group_by(LedgerEntry.journal_id)
                .having(func.sum(LedgerEntry.amount_cents) != 0)
            )
        )
        .scalars()
        .all()
    )
    return {
        "totals": {c: int(v) for c, v in sums},
        "negative_accounts": negative,
        "unbalanced_journals": list(unbalanced_journals),
    }
