"""The session lifecycle: the ONE place a Session's status changes.

    draft ──> scheduled ──> live ──> completed
      │           │  └───────────────> completed   (time over, nobody went live)
      └───────────┴──> cancelled <─── live

Every status change anywhere in the code goes through :func:`transition`
(inside the caller's write transaction). It is a conditional
``UPDATE ... WHERE status IN (allowed sources)`` so two processes racing to
move the same session cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import Session, SessionStatus
from api.services.errors import Conflict, NotFound

S = SessionStatus

TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    S.draft: frozenset({S.scheduled, S.cancelled}),
    S.scheduled: frozenset({S.live, S.completed, S.cancelled}),
    S.live: frozenset({S.completed, S.cancelled}),
    S.completed: frozenset(),
    S.cancelled: frozenset(),
}

# Statuses learners can see in the catalog (drafts are private to their mentor).
PUBLIC = frozenset({S.scheduled, S.live, S.completed, S.cancelled})
TERMINAL = frozenset({S.completed, S.cancelled})


class InvalidTransition(Conflict):
    """The session's status may not move to ``dst`` (``invalid_status``)."""

    def __init__(self, src: SessionStatus, dst: SessionStatus) -> None:
        super().__init__(f"A {src.value} session cannot become {dst.value}.", code="invalid_status")
        self.src = src
        self.dst = dst


def can_transition(src: SessionStatus, dst: SessionStatus) -> bool:
    return dst in TRANSITIONS[src]


def sources_of(dst: SessionStatus) -> frozenset[SessionStatus]:
    return frozenset(src for src, dsts in TRANSITIONS.items() if dst in dsts)


async def transition(s: AsyncSession, session_id: int, dst: SessionStatus, *, now: datetime | None = None) -> Session:
    """Move session ``session_id`` to ``dst`` inside the caller's transaction.

    Raises 404 if the session does not exist and 409 ``invalid_status`` if its
    current status may not move to ``dst`` (including a concurrent move that won).
    Sets ``started_at`` on live and ``ended_at`` on completed/cancelled.
    Returns the refreshed Session.
    """
    now = now or datetime.now(timezone.utc)
    values: dict[str, object] = {"status": dst, "updated_at": now}
    if dst == S.live:
        values["started_at"] = now
    if dst in TERMINAL:
        values["ended_at"] = now
    if dst == S.cancelled:
        values["sequence"] = Session.sequence + 1  # subscribed calendars must take the cancellation
    result = await s.execute(
        update(Session)
        .where(Session.id == session_id, Session.status.in_(sources_of(dst)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    row = await s.scalar(select(Session).where(Session.id == session_id).execution_options(populate_existing=True))
    if row is None:
        raise NotFound.of("session")
    if (result.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(row.status, dst)
    return row
