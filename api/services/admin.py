"""Admin views: users, sessions, feedback moderation, the audit log and system health.

Money (the transaction log) comes from :mod:`api.services.money.ledger`, requests from
:mod:`api.services.requests`, platform settings from
:mod:`api.services.settings_store`; this module adds the rest.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select, text

from api.context import Context
from api.models import AuditLog, Feedback, Role, Session, SessionStatus, User
from api.services import mentor_record
from api.services.errors import NotFound

STARTED_AT = time.time()


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _page(page: int, page_size: int) -> tuple[int, int]:
    return max(1, page), max(1, min(page_size, 200))


async def list_users(
    ctx: Context,
    *,
    q: str | None = None,
    role: str | None = None,
    active: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    page, page_size = _page(page, page_size)
    query = select(User)
    if q:
        like = f"%{_escape_like(q.strip().lower())}%"
        query = query.where(
            or_(func.lower(User.email).like(like, escape="\\"), func.lower(User.full_name).like(like, escape="\\"))
        )
    if role:
        query = query.where(User.role == Role(role))
    if active is not None:
        query = query.where(User.is_active.is_(active))
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (await s.scalars(query.order_by(User.id.desc()).limit(page_size).offset((page - 1) * page_size))).all()
        record = await mentor_record.records(s, [u.id for u in rows if u.role == Role.mentor])
    items = [
        {
            "id": u.id,
            "email": u.email,
            "full_name": u.full_name,
            "role": u.role.value,
            "is_active": u.is_active,
            "email_verified": u.email_verified_at is not None,
            "created_at": u.created_at,
            "mentor_record": record[u.id].as_dict() if u.id in record else None,
        }
        for u in rows
    ]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


async def list_sessions(
    ctx: Context,
    *,
    status: str | None = None,
    q: str | None = None,
    mentor_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    page, page_size = _page(page, page_size)
    query = select(Session, User.full_name).join(User, User.id == Session.mentor_id)
    if status:
        query = query.where(Session.status == SessionStatus(status))
    if mentor_id:
        query = query.where(Session.mentor_id == mentor_id)
    if q:
        like = f"%{_escape_like(q.strip().lower())}%"
        query = query.where(func.lower(Session.title).like(like, escape="\\"))
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (
            await s.execute(
                query.order_by(Session.starts_at.desc(), Session.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        ).all()
    items = [
        {
            "id": x.id,
            "title": x.title,
            "mentor_id": x.mentor_id,
            "mentor_name": name,
            "domain": x.domain,
            "status": x.status.value,
            "starts_at": x.starts_at,
            "duration_min": x.duration_min,
            "capacity": x.capacity,
            "seats_taken": x.seats_taken,
            "price_cents": x.price_cents,
            "currency": x.currency,
            "created_at": x.created_at,
        }
        for x, name in rows
    ]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


async def list_feedback(
    ctx: Context, *, hidden: bool | None = None, session_id: int | None = None, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    page, page_size = _page(page, page_size)
    query = (
        select(Feedback, User.full_name, Session.title)
        .join(User, User.id == Feedback.author_id)
        .join(Session, Session.id == Feedback.session_id)
    )
    if hidden is not None:
        query = query.where(Feedback.hidden.is_(hidden))
    if session_id:
        query = query.where(Feedback.session_id == session_id)
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (
            await s.execute(query.order_by(Feedback.id.desc()).limit(page_size).offset((page - 1) * page_size))
        ).all()
    items = [_feedback_out(f, name, title) for f, name, title in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def _feedback_out(f: Feedback, author_name: str, session_title: str) -> dict[str, Any]:
    return {
        "id": f.id,
        "session_id": f.session_id,
        "session_title": session_title,
        "author_id": f.author_id,
        "author_name": author_name,
        "rating": f.rating,
        "comment": f.comment,
        "hidden": f.hidden,
        "created_at": f.created_at,
    }


async def set_feedback_hidden(ctx: Context, actor_id: int, feedback_id: int, hidden: bool) -> dict[str, Any]:
    async with ctx.db.write() as s:
        f = await s.get(Feedback, feedback_id)
        if f is None:
            raise NotFound.of("feedback")
        if f.hidden != hidden:
            f.hidden = hidden
            s.add(
                AuditLog(
                    actor_id=actor_id,
                    action="feedback.hide" if hidden else "feedback.unhide",
                    target=f"feedback:{feedback_id}",
                    details={"session_id": f.session_id},
                )
            )
        author = await s.scalar(select(User.full_name).where(User.id == f.author_id)) or ""
        title = await s.scalar(select(Session.title).where(Session.id == f.session_id)) or ""
        return _feedback_out(f, author, title)


async def audit_log(
    ctx: Context, *, action: str | None = None, actor_id: int | None = None, page: int = 1, page_size: int = 50
) -> dict[str, Any]:
    page, page_size = _page(page, page_size)
    query = select(AuditLog, User.email).outerjoin(User, User.id == AuditLog.actor_id)
    if action:
        query = query.where(AuditLog.action == action)
    if actor_id:
        query = query.where(AuditLog.actor_id == actor_id)
    async with ctx.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = (
            await s.execute(query.order_by(AuditLog.id.desc()).limit(page_size).offset((page - 1) * page_size))
        ).all()
    items = [
        {
            "id": a.id,
            "actor_id": a.actor_id,
            "actor_email": email,
            "action": a.action,
            "target": a.target,
            "details": a.details or {},
            "created_at": a.created_at,
        }
        for a, email in rows
    ]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def _engine_counts(engine: Any) -> tuple[int, int]:
    """(rooms, peers) from the SFU engine when one is registered, else zeros."""
    if engine is None:
        return 0, 0
    for name in ("stats", "snapshot"):
        fn = getattr(engine, name, None)
        if callable(fn):
            try:
                data = fn()
                if isinstance(data, dict):
                    peers = data["peers"] if "peers" in data else data.get("participants", 0)
                    return int(data.get("rooms", 0)), int(peers)
                if hasattr(data, "rooms"):
                    return int(data.rooms), int(getattr(data, "peers", 0))
            except Exception:  # noqa: BLE001 - health reports, never fails
                pass
    rooms = getattr(engine, "rooms", None)
    try:
        n_rooms = len(rooms) if rooms is not None else 0
        peers = 0
        for room in rooms.values() if isinstance(rooms, dict) else rooms or ():
            members = getattr(room, "peers", None) or getattr(room, "participants", None) or ()
            peers += len(members)
        return n_rooms, peers
    except Exception:  # noqa: BLE001
        return 0, 0


async def health(ctx: Context, *, engine: Any = None, hub: Any = None, version: str = "") -> dict[str, Any]:
    import psutil

    start = time.perf_counter()
    database: dict[str, bool | float | str | None]
    try:
        async with ctx.db.read() as s:
            await s.execute(text("SELECT 1"))
        database = {
            "ok": True,
            "latency_ms": round((time.perf_counter() - start) * 1000, 2),
            "dialect": "sqlite" if ctx.db.is_sqlite else "postgresql",
        }
    except Exception as exc:  # noqa: BLE001 - report, never raise
        database = {
            "ok": False,
            "latency_ms": None,
            "error": type(exc).__name__,
            "dialect": "sqlite" if ctx.db.is_sqlite else "postgresql",
        }
    b_start = time.perf_counter()
    broker_ok = await ctx.broker.healthy()
    broker = {
        "ok": broker_ok,
        "kind": "redis" if type(ctx.broker).__name__ == "RedisBroker" else "memory",
        "latency_ms": round((time.perf_counter() - b_start) * 1000, 2),
    }
    rooms, peers = _engine_counts(engine)
    proc = psutil.Process(os.getpid())
    with proc.oneshot():
        cpu = proc.cpu_percent(interval=None)
        rss = proc.memory_info().rss
    return {
        "status": "ok" if database["ok"] and broker_ok else "degraded",
        "version": version,
        "uptime_seconds": round(time.time() - STARTED_AT, 1),
        "now": datetime.now(timezone.utc),
        "database": database,
        "broker": broker,
        "rooms": rooms,
        "peers": peers,
        "websockets": hub.connection_count() if hub is not None else 0,
        "online_users": hub.online_count() if hub is not None else 0,
        "process": {"pid": os.getpid(), "cpu_percent": cpu, "rss_bytes": rss, "threads": proc.num_threads()},
    }
