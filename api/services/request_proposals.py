"""The learner's side of a mentor's proposal: confirm (and pay), decline, or let it lapse.

A mentor's accept only proposes a price and one of the learner's preferred
times (``api.services.requests.accept``). The charge happens here, when the
learner confirms: the request becomes ``accepted``, the scheduled session, the
learner's booking and the sandbox charge are written in one transaction, so
either all of it happens or none. Declining, or the proposal lapsing
(``proposal_expires_at``, at the latest its start), reopens the request for
this or another mentor.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import CurrentUser
from api.context import Context
from api.models import Notification, Request, RequestStatus
from api.schemas.requests import ProposalConfirm, RequestAccepted, RequestOut
from api.services import accounts, bookings, notifications
from api.services.errors import Conflict, NotFound
from api.services.local_time import spoken, user_zones
from api.services.requests import outs, reload, visible
from api.services.settings_store import get_all as platform_settings

# A proposal's fields, cleared when it is declined or lapses.
CLEARED = {
    "decided_by_id": None,
    "proposed_price_cents": None,
    "proposed_starts_at": None,
    "proposed_title": None,
    "proposal_expires_at": None,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


async def _own_proposal(s: AsyncSession, user: CurrentUser, request_id: int) -> Request:
    r = await visible(s, request_id, user)
    if r.learner_id != user.id:
        raise NotFound.of("request")  # only its learner answers a proposal
    return r


def _same(r: Request, seen: ProposalConfirm) -> bool:
    return (
        r.proposed_price_cents == seen.price_cents
        and r.proposed_starts_at == seen.starts_at.astimezone(UTC)
        and r.decided_by_id == seen.mentor_id
    )


def _not_pending(r: Request, now: datetime) -> Exception:
    if r.status == RequestStatus.proposed and r.proposal_expires_at is not None and r.proposal_expires_at <= now:
        return Conflict("This proposal has expired; the request is open again.", code="proposal_expired")
    return Conflict("This request has no proposal waiting for you.", code="no_proposal")


def proposal_changed() -> Conflict:
    return Conflict(
        "The proposal changed since you saw it; nothing was charged. Review the new proposal.",
        code="proposal_changed",
    )


async def confirm(ctx: Context, learner: CurrentUser, request_id: int, seen: ProposalConfirm) -> RequestAccepted:
    """The learner accepts the proposal they saw: session, booking and charge, one transaction.

    409 ``no_proposal`` / ``proposal_expired`` if there is nothing to confirm (any more),
    ``proposal_changed`` if the current proposal is not the one ``seen`` (bait and switch)."""
    fee_percent = float((await platform_settings(ctx.db))["platform_fee_percent"])
    now = utcnow()
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        r = await _own_proposal(s, learner, request_id)
        await accounts.ensure_verified(s, learner.id, ctx.settings)  # confirming pays
        # Exactly one confirm (or decline, or lapse) wins this conditional update, and only
        # for the very proposal the learner saw: price, start and mentor.
        bound = [
            Request.proposed_price_cents == seen.price_cents,
            Request.proposed_starts_at == seen.starts_at.astimezone(UTC),
            Request.decided_by_id == seen.mentor_id,
        ]
        result = await s.execute(
            update(Request)
            .where(
                Request.id == request_id,
                Request.status == RequestStatus.proposed,
                Request.proposal_expires_at > now,
                Request.proposed_starts_at > now,
                *bound,
            )
            .values(status=RequestStatus.accepted, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
            if r.status == RequestStatus.proposed and (r.proposal_expires_at or now) > now and not _same(r, seen):
                raise proposal_changed()
            raise _not_pending(r, now)
        r = await reload(s, request_id)
        assert r.decided_by_id is not None and r.proposed_starts_at is not None
        await accounts.ensure_can_sell(s, r.decided_by_id, ctx.settings)  # rolls the accept back
        sess, booking = await bookings.book_one_to_one(
            s,
            r.learner_id,
            fee_percent,
            now,
            mentor_id=r.decided_by_id,
            title=r.proposed_title or r.topic,
            description=r.description,
            domain=r.domain,
            skills=list(r.skills or []),
            price_cents=r.proposed_price_cents or 0,
            currency="USD",
            starts_at=r.proposed_starts_at,
            duration_min=r.duration_min,
        )
        r.session_id = sess.id
        await s.flush()
        zones = await user_zones(s, [r.decided_by_id, r.learner_id])
        notes.append(
            notifications.add(
                s,
                r.decided_by_id,
                "request.accepted",
                f"Confirmed: {r.topic}"[:200],
                f"{learner.full_name} confirmed {spoken(sess.starts_at, zones.get(r.decided_by_id))}; "
                "the session is scheduled.",
                f"/sessions/{sess.id}",
            )
        )
        notes.append(
            notifications.add(
                s,
                r.learner_id,
                "request.accepted",
                f"Booked: {sess.title}"[:200],
                f"Your seat is confirmed for {spoken(sess.starts_at, zones.get(r.learner_id))}.",
                f"/sessions/{sess.id}",
            )
        )
        out = (await outs(s, [r]))[0]
        session_id, booking_id = sess.id, booking.id
    await notifications.push(ctx.broker, notes)
    await bookings.confirm_by_mail(ctx, booking_id)
    return RequestAccepted(request=out, session_id=session_id, booking_id=booking_id)


async def decline(ctx: Context, learner: CurrentUser, request_id: int) -> RequestOut:
    """The learner turns the proposal down: nothing is charged and the request is open
    again (the mentor is told, and may propose another time or price)."""
    now = utcnow()
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        r = await _own_proposal(s, learner, request_id)
        mentor_id = r.decided_by_id
        result = await s.execute(
            update(Request)
            .where(Request.id == request_id, Request.status == RequestStatus.proposed)
            .values(status=RequestStatus.open, updated_at=now, **CLEARED)
            .execution_options(synchronize_session=False)
        )
        if (result.rowcount or 0) != 1 or mentor_id is None:  # type: ignore[attr-defined]
            raise _not_pending(r, now)
        r = await reload(s, request_id)
        notes.append(
            notifications.add(
                s,
                mentor_id,
                "request.proposal_declined",
                f"Proposal declined: {r.topic}"[:200],
                f"{learner.full_name} declined your proposal; the request is open again.",
                f"/mentor/requests#request-{r.id}",
            )
        )
        out = (await outs(s, [r]))[0]
    await notifications.push(ctx.broker, notes)
    return out


async def expire_due(ctx: Context, now: datetime | None = None) -> list[int]:
    """Scheduler: proposals nobody confirmed in time lapse; the request reopens, both sides are told."""

    now = now or utcnow()
    async with ctx.db.read() as s:
        due = list(
            (
                await s.scalars(
                    select(Request.id).where(
                        Request.status == RequestStatus.proposed, Request.proposal_expires_at <= now
                    )
                )
            ).all()
        )
    lapsed: list[int] = []
    notes: list[Notification] = []
    for rid in due:
        async with ctx.db.write() as s:
            r = await s.get(Request, rid)
            mentor_id = r.decided_by_id if r is not None else None
            result = await s.execute(
                update(Request)
                .where(Request.id == rid, Request.status == RequestStatus.proposed, Request.proposal_expires_at <= now)
                .values(status=RequestStatus.open, updated_at=now, **CLEARED)
                .execution_options(synchronize_session=False)
            )
            if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
                continue  # confirmed, declined or lapsed by another process meanwhile
            r = await reload(s, rid)
            notes.append(
                notifications.add(
                    s,
                    r.learner_id,
                    "request.proposal_expired",
                    f"Proposal expired: {r.topic}"[:200],
                    "You did not confirm the mentor's proposal in time; nothing was charged and your "
                    "request is open again.",
                    "/learner/requests",
                )
            )
            if mentor_id is not None:
                notes.append(
                    notifications.add(
                        s,
                        mentor_id,
                        "request.proposal_expired",
                        f"Proposal expired: {r.topic}"[:200],
                        "The learner did not confirm your proposal in time.",
                        "/mentor/requests",
                    )
                )
        lapsed.append(rid)
    await notifications.push(ctx.broker, notes)
    return lapsed
