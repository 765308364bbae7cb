"""Charging, refunding and releasing a booking: the provider call and the ledger journal move together.

``charge`` and ``refund`` are the only places a learner's money enters or leaves the
platform, ``release`` the only place it becomes the mentor's (payouts, in ``earnings``,
are the mentor's side). Every other module asks these; none writes money journals itself. Both run inside the
caller's write transaction: the journal commits with the booking's change or not
at all. The provider is called with a key derived from the booking, so a retried
transaction asks it for the same charge or refund again and it answers with the
same reference instead of moving money twice (docs/money.md, "Provider and ledger").
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from sqlalchemy import select

from api.models import Booking, BookingStatus, Session
from api.services.money import ledger
from api.services.money.provider import provider


async def charge(s: AsyncSession, booking: Booking, sess: Session, fee_percent: float) -> None:
    """The learner pays ``sess``'s price for ``booking`` (flushed, so it has an id)."""
    if booking.price_cents <= 0:
        return
    paid = provider.charge(amount_cents=booking.price_cents, currency=booking.currency, key=f"booking:{booking.id}")
    booking.payment_ref = paid.reference
    await ledger.record_charge(
        s,
        booking_id=booking.id,
        session_id=sess.id,
        mentor_id=sess.mentor_id,
        price_cents=booking.price_cents,
        currency=booking.currency,
        fee_percent=fee_percent,
        reference=paid.reference,
    )


async def is_refunded(s: AsyncSession, booking_id: int) -> bool:
    return await ledger.journal_by_key(s, f"refund:booking:{booking_id}") is not None


async def is_released(s: AsyncSession, booking_id: int) -> bool:
    return await ledger.journal_by_key(s, f"release:booking:{booking_id}") is not None


async def refund(s: AsyncSession, booking: Booking, reason: str) -> int:
    """Give ``booking``'s whole charge back: the reversing journal and the provider's refund.

    Returns the cents refunded by this call: 0 when nothing was charged or it was already
    refunded (idempotent). A charge already released to the mentor cannot be refunded
    here (409 ``insufficient_funds`` from the ledger: the money has left the hold)."""
    if await is_refunded(s, booking.id):
        return 0
    journal = await ledger.record_refund(s, booking.id, reference=reason)
    if journal is None:
        return 0  # nothing was charged (a free seat)
    amount = await ledger.paid_in(s, journal.id)
    provider.refund(charge_reference=booking.payment_ref or "", amount_cents=amount, currency=booking.currency)
    return amount


async def release(s: AsyncSession, booking: Booking, reason: str = "") -> bool:
    """The booking's share leaves the hold: mentor pending -> available, fees pending -> fees.
    Idempotent; False when nothing was charged. Callers decide when (settlement after the
    hold, an admin resolving a report); a refunded charge cannot be released (the ledger
    refuses to take pending money twice)."""
    return await ledger.record_release(s, booking.id, reference=reason) is not None


async def kept_by_late_cancellations(s: AsyncSession, session_id: int) -> list[Booking]:
    """Bookings cancelled too late for a refund whose charge still waits on the class: the
    class's settlement (or its cancellation) decides them, released or refunded (docs/money.md)."""
    rows = await s.scalars(
        select(Booking).where(
            Booking.session_id == session_id,
            Booking.status == BookingStatus.cancelled,
            Booking.price_cents > 0,
            Booking.settled_at.is_(None),
        )
    )
    return list(rows.all())
