"""Recordings: who may see them, the queries and deletions, and their files on disk.

The capture is ``sfu.recording`` (RTP dumps, WebM without transcoding); starting,
stopping, finalizing and exporting is ``api.services.recording_manager``. This module
owns the ``Recording`` rows and their files under
``settings.effective_recordings_dir / <recording id>``, and who may see them:
admins all, a mentor the recordings of their own sessions, nobody else.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import delete, select

from api.context import Context
from api.models import Recording, RecordingStatus, Session, utcnow
from api.services import settings_store
from api.services.errors import Conflict, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)

EXPORT_FILE = "composite.mp4"
EXPORT_PROGRESS = "export.progress"


def recording_dir(ctx: Context, recording_id: int) -> Path:
    return ctx.settings.effective_recordings_dir / str(int(recording_id))


# ---------------------------------------------------------------- serialization


def serialize(rec: Recording, session: Optional[Session] = None) -> dict[str, Any]:
    files: list[dict[str, object]] = []
    for f in rec.files or []:
        if isinstance(f, dict):
            files.append(
                {
                    k: f.get(k)
                    for k in (
                        "index",
                        "name",
                        "user_id",
                        "display_name",
                        "role",
                        "bytes",
                        "duration_ms",
                        "offset_ms",
                        "streams",
                    )
                }
            )
    export = dict(rec.export or {})
    return {
        "id": rec.id,
        "session_id": rec.session_id,
        "session_title": session.title if session is not None else None,
        "mentor_id": session.mentor_id if session is not None else None,
        "status": rec.status.value,
        "participants": list(rec.participants or []),
        "files": files,
        "bytes": int(rec.bytes or 0),
        "duration_ms": int(rec.duration_ms or 0),
        "gaps": [dict(g) for g in rec.gaps or []],
        "error": rec.error or "",
        "started_at": rec.started_at.isoformat(),
        "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "export": {
            "status": export.get("status", "none"),
            "progress": float(export.get("progress", 0.0)),
            "bytes": export.get("bytes"),
            "codec": export.get("codec"),
            "error": export.get("error", ""),
            "note": export.get("note", ""),
        },
    }


# ---------------------------------------------------------------- access


async def load_visible(s: Any, recording_id: int, user_id: int, role: str) -> tuple[Recording, Session]:
    """The recording if this user may see it: 404 if missing (or another mentor's), 403 for learners."""
    if role not in ("admin", "mentor"):
        raise Forbidden("Only admins and the session's mentor can see recordings.")
    rec = await s.get(Recording, recording_id)
    session = await s.get(Session, rec.session_id) if rec is not None else None
    if rec is None or session is None or (role != "admin" and session.mentor_id != user_id):
        raise NotFound.of("recording")
    return rec, session


async def get(ctx: Context, recording_id: int, user_id: int, role: str) -> dict[str, Any]:
    async with ctx.db.read() as s:
        rec, session = await load_visible(s, recording_id, user_id, role)
        return serialize(rec, session)


async def list_for(
    ctx: Context,
    user_id: int,
    role: str,
    *,
    session_id: Optional[int] = None,
    mentor_id: Optional[int] = None,
    date_from: Optional[datetime] = None,
    date_to: Optional[datetime] = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    if role not in ("admin", "mentor"):
        raise Forbidden("Only admins and mentors can list recordings.")
    q = select(Recording, Session).join(Session, Session.id == Recording.session_id)
    if role != "admin":
        q = q.where(Session.mentor_id == user_id)
    if session_id is not None:
        q = q.where(Recording.session_id == session_id)
    if mentor_id is not None:
        q = q.where(Session.mentor_id == mentor_id)
    if date_from is not None:
        q = q.where(Recording.started_at >= date_from)
    if date_to is not None:
        q = q.where(Recording.started_at <= date_to)
    async with ctx.db.read() as s:
        rows = (
            await s.execute(q.order_by(Recording.started_at.desc(), Recording.id.desc()).limit(limit).offset(offset))
        ).all()
    return {"items": [serialize(rec, session) for rec, session in rows]}


def file_for_download(ctx: Context, rec: dict[str, Any], which: Optional[str]) -> tuple[Path, str, str]:
    """(path, download filename, content type) for ``?file=N`` / ``?file=export`` / default."""
    if rec["status"] != "ready":
        raise Conflict(f"This recording is {rec['status']}.", code="not_ready")
    base = recording_dir(ctx, rec["id"])
    stem = f"peerlearn-session-{rec['session_id']}-recording-{rec['id']}"
    export_ready = rec["export"]["status"] == "ready"
    if which == "export" or (which is None and export_ready and len(rec["files"]) > 1):
        if not export_ready:
            raise Conflict("Export this recording first.", code="export_not_ready")
        return base / EXPORT_FILE, f"{stem}.mp4", "video/mp4"
    index = 0
    if which is not None:
        try:
            index = int(which)
        except ValueError as exc:
            raise Invalid("file must be a file index or 'export'.", code="invalid_file") from exc
    entry = next((f for f in rec["files"] if f["index"] == index), None)
    if entry is None:
        raise NotFound.of("file")
    who = "".join(ch if ch.isalnum() else "-" for ch in str(entry.get("display_name") or index)).strip("-")[:40]
    return base / str(entry["name"]), f"{stem}-{index + 1}-{who or 'participant'}.webm", "video/webm"


async def remove(ctx: Context, recording_id: int, user_id: int, role: str) -> None:
    async with ctx.db.write() as s:
        rec, _session = await load_visible(s, recording_id, user_id, role)
        if rec.status == RecordingStatus.recording:
            raise Conflict("Stop the recording before deleting it.", code="recording")
        await s.delete(rec)
    await asyncio.to_thread(shutil.rmtree, recording_dir(ctx, recording_id), True)


async def apply_retention(ctx: Context, now: Optional[datetime] = None) -> int:
    """Delete recordings (rows and files) older than ``recording_retention_days``."""
    days = int((await settings_store.get_all(ctx.db))["recording_retention_days"])
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with ctx.db.write() as s:
        ids = list(
            (
                await s.scalars(
                    select(Recording.id).where(
                        Recording.started_at < cutoff,
                        Recording.status.in_((RecordingStatus.ready, RecordingStatus.failed)),
                    )
                )
            ).all()
        )
        if ids:
            await s.execute(delete(Recording).where(Recording.id.in_(ids)))
    for rid in ids:
        await asyncio.to_thread(shutil.rmtree, recording_dir(ctx, rid), True)
    if ids:
        log.info("retention: deleted %d recordings older than %d days", len(ids), days)
    return len(ids)


async def check_room_mentor(ctx: Context, session_id: int, user_id: int) -> Session:
    """Only the session's own mentor starts and stops its recording."""
    async with ctx.db.read() as s:
        session = await s.get(Session, session_id)
    if session is None:
        raise NotFound.of("session")
    if session.mentor_id != user_id:
        raise Forbidden("Only the session's mentor can start or stop recording.")
    return session
