"""Closing an account with everything it sold: a deactivated mentor takes no more money.

Deactivating (admin) stops the account's tokens and sockets (``accounts.set_active``);
for a mentor it also cancels every future scheduled session, refunding each learner in
full with a notice (``catalog.cancel_session``), and withdraws every proposal still
waiting for a learner's confirmation, reopening the request (docs/money.md, "Mentor
deactivated"). Classes already live settle as usual from what the SFU saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update

from api.context import Context
from api.models import Notification, Request, RequestStatus, Role, Session, SessionStatus, User
from api.services import accounts, catalog, notifications
from api.services.errors import Conflict
from api.services.request_proposals import CLEARED

REASON = "The mentor is no longer on PeerLearn."


@dataclass
class _Admin:
    id: int
    role: str = "admin"


async def deactivate(ctx: Context, actor_id: int, user_id: int) -> User:
    user = await accounts.set_active(ctx.db, actor_id, user_id, False)
    if user.role == Role.mentor:
        await _cancel_future_sessions(ctx, actor_id, user_id)
        await _withdraw_proposals(ctx, user_id)
    return user


async def _cancel_future_sessions(ctx: Context, actor_id: int, mentor_id: int) -> None:
    now = datetime.now(UTC)
    async with ctx.db.read() as s:
        ids = (
            await s.scalars(
                select(Session.id).where(
                    Session.mentor_id == mentor_id, Session.status == SessionStatus.scheduled, Session.starts_at > now
                )
            )
        ).all()
    for sid in ids:
        try:
            await catalog.cancel_session(ctx, _Admin(actor_id), sid, REASON)
        except Conflict:
            continue  # it started or was cancelled meanwhile: settlement or the other cancel decides


async def _withdraw_proposals(ctx: Context, mentor_id: int) -> None:
    now = datetime.now(UTC)
    notes: list[Notification] = []
    async with ctx.db.write() as s:
        waiting = (
            await s.scalars(
                select(Request).where(Request.decided_by_id == mentor_id, Request.status == RequestStatus.proposed)
            )
        ).all()
        for r in waiting:
            await s.execute(
                update(Request)
                .where(Request.id == r.id, Request.status == RequestStatus.proposed)
                .values(status=RequestStatus.open, updated_at=now, **CLEARED)
                .execution_options(synchronize_session=False)
            )
            notes.append(
                notifications.add(
                    s,
                    r.learner_id,
                    "request.proposal_expired",
                    f"Proposal withdrawn: {r.topic}"[:200],
                    f"{REASON} Nothing was charged; your request is open again for other mentors.",
                    f"/learner/requests#request-{r.id}",
                )
            )
    await notifications.push(ctx.broker, notes)
