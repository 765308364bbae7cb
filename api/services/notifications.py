"""Notifications: stored first, then pushed to the user's realtime channel."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.broker import MemoryBroker
from api.db import Database
from api.models import Notification

# The kinds pages and clients can rely on.
KINDS = frozenset(
    {
        "booking.created",
        "booking.cancelled",
        "request.new",
        "request.accepted",
        "request.declined",
        "request.cancelled",
        "request.expired",
        "session.reminder",
        "session.cancelled",
        "session.updated",
        "mentor.ready",
        "learner.joined",
        "payout.status",
        "feedback.received",
        "recording.failed",
        "account",
        # Money rules (issue 14): proposals, settlement, the hold, problem reports.
        "request.proposed",
        "request.proposal_declined",
        "request.proposal_expired",
        "session.completed",
        "session.no_show",
        "earnings.available",
        "report.opened",
        "report.resolved",
        # The class took place but not for this learner (docs/money.md): refunded in full.
        "session.refunded",
        # Scheduling (issue 26): moving a booked 1:1 by consent.
        "session.reschedule_proposed",
        "session.reschedule_declined",
        "session.reschedule_withdrawn",
        "session.rescheduled",
    }
)


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def session_channel(session_id: int) -> str:
    return f"session:{session_id}"


def serialize(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "link": n.link,
        "read": n.read_at is not None,
        "created_at": n.created_at.isoformat(),
    }


def add(s: AsyncSession, user_id: int, kind: str, title: str, body: str = "", link: str = "") -> Notification:
    """Stage a notification inside the caller's transaction; push it with ``push`` after commit."""
    assert kind in KINDS, kind
    n = Notification(user_id=user_id, kind=kind, title=title[:200], body=body, link=link[:255])
    s.add(n)
    return n


async def push(broker: MemoryBroker, notes: list[Notification]) -> None:
    """Publish committed notifications to their users' channels."""
    for n in notes:
        await broker.publish(user_channel(n.user_id), {"type": "notification", "data": serialize(n)})


async def notify(
    db: Database, broker: MemoryBroker, user_id: int, kind: str, title: str, body: str = "", link: str = ""
) -> dict[str, Any]:
    """Store and push one notification in its own transaction."""
    async with db.write() as s:
        n = add(s, user_id, kind, title, body, link)
        await s.flush()
    await push(broker, [n])
    return serialize(n)


async def list_for(
    db: Database, user_id: int, *, unread_only: bool = False, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int, int]:
    """(items newest first, total, unread count) of this user's notifications (shared data:
    never modify it), from memory until one of this user's notifications is written."""
    cache = db.caches.cache("notifications", ("notifications",), max_entries=20_000, partition="notifications.user_id")
    params = (unread_only, limit, offset)
    stamp = cache.token()
    mine: dict[Any, Any] | None = cache.get(user_id)
    if mine is not None and params in mine:
        return mine[params]  # type: ignore[no-any-return]
    result = await _list_for(db, user_id, unread_only=unread_only, limit=limit, offset=offset)
    if mine is None or len(mine) >= 8:
        cache.put(user_id, {params: result}, stamp)
    elif stamp == cache.token():  # no write since: the user's entry may take this page too
        mine[params] = result
    return result


async def _list_for(
    db: Database, user_id: int, *, unread_only: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, int]:
    mine = Notification.user_id == user_id
    # One round trip: the page with both counts beside each row (scalar subqueries); an
    # empty page (or limit=0, the pages' unread badge) asks for the counts alone.
    counts = (
        select(func.count()).select_from(Notification).where(mine).scalar_subquery(),
        select(func.count()).select_from(Notification).where(mine, Notification.read_at.is_(None)).scalar_subquery(),
    )
    async with db.read() as s:
        q = select(Notification, *counts).where(mine)
        if unread_only:
            q = q.where(Notification.read_at.is_(None))
        rows = (await s.execute(q.order_by(Notification.id.desc()).limit(limit).offset(offset))).all()
        total, unread = (rows[0][1], rows[0][2]) if rows else (await s.execute(select(*counts))).one()
    return [serialize(n) for n, _, _ in rows], int(total or 0), int(unread or 0)


async def mark_read(db: Database, user_id: int, ids: list[int] | None = None) -> int:
    """Mark all (ids None) or the given notifications of THIS user read; returns how many."""
    q = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        q = q.where(Notification.id.in_(ids))
    async with db.write() as s:
        result = await s.execute(q.values(read_at=datetime.now(timezone.utc)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
