"""Recordings: start/stop per live room, finalization, recovery, retention, composite export.

The capture itself is ``sfu.recorder.Recorder`` (RTP dumps, WebM without
transcoding). This module owns the ``Recording`` rows and their files under
``settings.effective_recordings_dir / <recording id>``, and who may see them:
admins all, a mentor the recordings of their own sessions, nobody else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import delete, select

from api.context import Context
from api.errors import ApiError, forbidden, not_found
from api.models import Recording, RecordingFile, RecordingStatus, Role, Session, User, utcnow
from api.services import notifications, settings_store
from sfu import Router
from sfu import observer as ev
from sfu.recording import Recorder, RecorderError, capture_in_progress, finalize
from api.jobs.composite_export import export_composite

log = logging.getLogger(__name__)

EXPORT_FILE = "composite.mp4"
EXPORT_PROGRESS = "export.progress"
#: a row with no directory younger than this may belong to a process that is just starting it
ORPHAN_GRACE = timedelta(seconds=60)


def recording_dir(ctx: Context, recording_id: int) -> Path:
    return ctx.settings.effective_recordings_dir / str(int(recording_id))


# ---------------------------------------------------------------- serialization


def serialize(rec: Recording, session: Optional[Session] = None) -> dict[str, Any]:
    files: list[dict[str, object]] = []
    for f in rec.files or []:
        if isinstance(f, dict):
            files.append({k: f.get(k) for k in ("index", "name", "user_id", "display_name", "role", "bytes",
                                                 "duration_ms", "offset_ms", "streams")})
    export = dict(rec.export or {})
    return {
        "id": rec.id, "session_id": rec.session_id,
        "session_title": session.title if session is not None else None,
        "mentor_id": session.mentor_id if session is not None else None,
        "status": rec.status.value, "participants": list(rec.participants or []), "files": files,
        "bytes": int(rec.bytes or 0), "duration_ms": int(rec.duration_ms or 0), "error": rec.error or "",
        "started_at": rec.started_at.isoformat(), "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "export": {"status": export.get("status", "none"), "progress": float(export.get("progress", 0.0)),
                   "bytes": export.get("bytes"), "codec": export.get("codec"), "error": export.get("error", ""),
                   "note": export.get("note", "")},
    }


# ---------------------------------------------------------------- access


async def _load(s: Any, recording_id: int, user_id: int, role: str) -> tuple[Recording, Session]:
    """The recording if this user may see it: 404 if missing (or another mentor's), 403 for learners."""
    if role not in ("admin", "mentor"):
        raise forbidden("Only admins and the session's mentor can see recordings.")
    rec = await s.get(Recording, recording_id)
    session = await s.get(Session, rec.session_id) if rec is not None else None
    if rec is None or session is None or (role != "admin" and session.mentor_id != user_id):
        raise not_found("recording")
    return rec, session


async def get(ctx: Context, recording_id: int, user_id: int, role: str) -> dict[str, Any]:
    async with ctx.db.read() as s:
        rec, session = await _load(s, recording_id, user_id, role)
        return serialize(rec, session)


async def list_for(ctx: Context, user_id: int, role: str, *, session_id: Optional[int] = None,
                   mentor_id: Optional[int] = None, date_from: Optional[datetime] = None,
                   date_to: Optional[datetime] = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    if role not in ("admin", "mentor"):
        raise forbidden("Only admins and mentors can list recordings.")
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
        rows = (await s.execute(q.order_by(Recording.started_at.desc(), Recording.id.desc())
                                .limit(limit).offset(offset))).all()
    return {"items": [serialize(rec, session) for rec, session in rows]}


def file_for_download(ctx: Context, rec: dict[str, Any], which: Optional[str]) -> tuple[Path, str, str]:
    """(path, download filename, content type) for ``?file=N`` / ``?file=export`` / default."""
    if rec["status"] != "ready":
        raise ApiError(409, "not_ready", f"This recording is {rec['status']}.")
    base = recording_dir(ctx, rec["id"])
    stem = f"peerlearn-session-{rec['session_id']}-recording-{rec['id']}"
    export_ready = rec["export"]["status"] == "ready"
    if which == "export" or (which is None and export_ready and len(rec["files"]) > 1):
        if not export_ready:
            raise ApiError(409, "export_not_ready", "Export this recording first.")
        return base / EXPORT_FILE, f"{stem}.mp4", "video/mp4"
    index = 0
    if which is not None:
        try:
            index = int(which)
        except ValueError as exc:
            raise ApiError(400, "invalid_file", "file must be a file index or 'export'.") from exc
    entry = next((f for f in rec["files"] if f["index"] == index), None)
    if entry is None:
        raise not_found("file")
    who = "".join(ch if ch.isalnum() else "-" for ch in str(entry.get("display_name") or index)).strip("-")[:40]
    return base / str(entry["name"]), f"{stem}-{index + 1}-{who or 'participant'}.webm", "video/webm"


async def remove(ctx: Context, recording_id: int, user_id: int, role: str) -> None:
    async with ctx.db.write() as s:
        rec, _session = await _load(s, recording_id, user_id, role)
        if rec.status == RecordingStatus.recording:
            raise ApiError(409, "recording", "Stop the recording before deleting it.")
        await s.delete(rec)
    await asyncio.to_thread(shutil.rmtree, recording_dir(ctx, recording_id), True)


async def apply_retention(ctx: Context, now: Optional[datetime] = None) -> int:
    """Delete recordings (rows and files) older than ``recording_retention_days``."""
    days = int((await settings_store.get_all(ctx.db))["recording_retention_days"])
    cutoff = (now or utcnow()) - timedelta(days=days)
    async with ctx.db.write() as s:
        ids = list((await s.scalars(select(Recording.id).where(
            Recording.started_at < cutoff,
            Recording.status.in_((RecordingStatus.ready, RecordingStatus.failed))))).all())
        if ids:
            await s.execute(delete(Recording).where(Recording.id.in_(ids)))
    for rid in ids:
        await asyncio.to_thread(shutil.rmtree, recording_dir(ctx, rid), True)
    if ids:
        log.info("retention: deleted %d recordings older than %d days", len(ids), days)
    return len(ids)


async def _notify_admins(ctx: Context, title: str, body: str, link: str = "/admin/recordings") -> None:
    async with ctx.db.write() as s:
        admins = (await s.scalars(select(User.id).where(User.role == Role.admin, User.is_active.is_(True)))).all()
        notes = [notifications.add(s, uid, "recording.failed", title, body, link) for uid in admins]
        await s.flush()
    await notifications.push(ctx.broker, notes)


# ---------------------------------------------------------------- the per-process manager


class RecordingManager:
    """Recorders of this process's rooms (by session id), finalization and export jobs."""

    def __init__(self, ctx: Context, router_of: Callable[[int], Optional[Router]]) -> None:
        self.ctx = ctx
        self.router_of = router_of
        self.active: dict[int, tuple[int, Recorder]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._starting: dict[int, asyncio.Lock] = {}
        self._pool: Optional[concurrent.futures.ProcessPoolExecutor] = None
        self.exports: dict[int, asyncio.Task[Any]] = {}
        self.closing = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording task failed", exc_info=task.exception())

    # ------------------------------------------------------------ rooms

    def attach(self, router: Router) -> None:
        """A new room: stop its recording when it closes; record it if the platform says so."""
        sid = int(router.app_data.get("session_id") or router.room_id)
        router.observer.on(ev.ROUTER_CLOSED, lambda _e: self.stop(sid, reason="room closed"))
        self.spawn(self._auto_start(sid, router))

    async def _auto_start(self, sid: int, router: Router) -> None:
        if not (await settings_store.get_all(self.ctx.db))["recording_default"]:
            return
        if not router.closed and sid not in self.active:
            try:
                await self.start(sid)
            except ApiError as exc:
                log.warning("automatic recording of session %s: %s", sid, exc.message)

    def status(self, sid: int) -> Optional[int]:
        entry = self.active.get(sid)
        return entry[0] if entry else None

    async def start(self, sid: int) -> Recording:
        lock = self._starting.setdefault(sid, asyncio.Lock())
        async with lock:
            router = self.router_of(sid)
            if router is None or router.closed:
                raise ApiError(409, "room_not_open", "The room is not open: start the class first.")
            if sid in self.active:
                rid = self.active[sid][0]
                async with self.ctx.db.read() as s:
                    return await s.get(Recording, rid)  # type: ignore[return-value]
            async with self.ctx.db.write() as s:
                rec = Recording(session_id=sid, status=RecordingStatus.recording, started_at=utcnow(),
                                participants=[], files=[], bytes=0, duration_ms=0, error="")
                s.add(rec)
                await s.flush()
                rid = rec.id
            extra = self.ctx.settings.extra
            recorder = Recorder(router, recording_dir(self.ctx, rid), on_error=self._on_error_for(sid, rid),
                                flush_interval=float(extra.get("recording_flush_interval", 0.25)),
                                sync_interval=float(extra.get("recording_sync_interval", 2.0)),
                                min_free_bytes=int(extra.get("recording_min_free_bytes", 64 * 1024 * 1024)))
            try:
                recorder.start({"recording_id": rid, "session_id": sid})
            except (OSError, RecorderError) as exc:
                message = f"Recording could not start: {getattr(exc, 'strerror', None) or exc}."
                await self._mark_failed(rid, message)
                raise ApiError(503, "recording_unavailable", message) from exc
            self.active[sid] = (rid, recorder)
            async with self.ctx.db.read() as s:
                return await s.get(Recording, rid)  # type: ignore[return-value]

    async def stop(self, sid: int, *, reason: str = "stopped") -> Optional[int]:
        entry = self.active.pop(sid, None)
        if entry is None:
            return None
        rid, recorder = entry
        await recorder.stop()
        if recorder.state == "failed":
            return rid  # _on_error recorded why
        async with self.ctx.db.write() as s:
            rec = await s.get(Recording, rid)
            if rec is not None:
                rec.status = RecordingStatus.processing
                rec.ended_at = utcnow()
                rec.bytes = recorder.bytes
        if not self.closing:
            self.spawn(self.finalize(rid))
        return rid

    def _on_error_for(self, sid: int, rid: int) -> Callable[[Recorder, str], Any]:
        def on_error(recorder: Recorder, message: str) -> Any:
            if self.active.get(sid, (None,))[0] == rid:
                del self.active[sid]
            return self._failed(rid, sid, message)

        return on_error

    async def _failed(self, rid: int, sid: int, message: str) -> None:
        await self._mark_failed(rid, message)
        try:
            await _notify_admins(self.ctx, f"Recording of session {sid} failed", message,
                                 f"/admin/recordings?session_id={sid}")
        except Exception:  # noqa: BLE001 - a notification failure must not hide the status
            log.exception("could not notify admins of failed recording %s", rid)

    async def _mark_failed(self, rid: int, message: str) -> None:
        async with self.ctx.db.write() as s:
            rec = await s.get(Recording, rid)
            if rec is not None:
                rec.status = RecordingStatus.failed
                rec.error = message[:2000]
                rec.ended_at = rec.ended_at or utcnow()

    # ------------------------------------------------------------ finalization

    async def finalize(self, rid: int) -> None:
        """Dumps -> WebM files (a thread: muxing without codecs is cheap but blocking)."""
        directory = recording_dir(self.ctx, rid)
        try:
            result = await asyncio.to_thread(finalize, directory)
        except RecorderError as exc:
            await self._mark_failed(rid, f"Nothing playable was recorded ({exc}).")
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("finalizing recording %s failed", rid)
            async with self.ctx.db.read() as s:
                rec = await s.get(Recording, rid)
                sid = rec.session_id if rec else 0
            await self._failed(rid, sid, f"Could not finalize the recording: {exc}")
            return
        files: list[RecordingFile] = []
        for f in result.files:
            files.append({"index": f.index, "name": f.name, "display_name": f.display_name, "role": f.role,
                          "bytes": f.bytes, "duration_ms": f.duration_ms, "offset_ms": f.offset_ms,
                          "streams": [dataclasses.asdict(st) for st in f.streams],
                          "user_id": f.app_data.get("user_id")})
        async with self.ctx.db.write() as s:
            rec = await s.get(Recording, rid)
            if rec is None:
                return  # deleted meanwhile
            rec.files = files
            rec.participants = [{"user_id": f["user_id"], "display_name": f["display_name"], "role": f["role"]}
                                for f in files]
            rec.bytes = result.bytes
            rec.duration_ms = result.duration_ms
            rec.status = RecordingStatus.ready
            if rec.ended_at is None:
                rec.ended_at = utcnow()

    async def recover(self) -> int:
        """Start-up: captures a crash left behind (no live process holds their lock) are finalized."""
        async with self.ctx.db.read() as s:
            rows = (await s.execute(select(Recording.id, Recording.started_at).where(
                Recording.status.in_((RecordingStatus.recording, RecordingStatus.processing))))).all()
        recovered = 0
        mine = {rid for rid, _r in self.active.values()}
        for rid, started in rows:
            directory = recording_dir(self.ctx, rid)
            if rid in mine or capture_in_progress(directory):
                continue
            if not directory.exists():
                if utcnow() - started < ORPHAN_GRACE:
                    continue  # maybe another process is creating it right now
                await self._mark_failed(rid, "The recording was interrupted before anything was captured.")
                continue
            async with self.ctx.db.write() as s:
                rec = await s.get(Recording, rid)
                if rec is None or rec.status not in (RecordingStatus.recording, RecordingStatus.processing):
                    continue
                if rec.status == RecordingStatus.recording:
                    rec.status = RecordingStatus.processing
                    rec.error = "Recovered after an interruption: kept what was captured before it."
                    rec.ended_at = datetime.fromtimestamp(_last_write(directory), timezone.utc)
            await self.finalize(rid)
            recovered += 1
        return recovered

    # ------------------------------------------------------------ export

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def request_export(self, rid: int, user_id: int, role: str) -> dict[str, Any]:
        async with self.ctx.db.write() as s:
            rec, session = await _load(s, rid, user_id, role)
            if rec.status != RecordingStatus.ready:
                raise ApiError(409, "not_ready", f"This recording is {rec.status.value}.")
            if (rec.export or {}).get("status") in ("queued", "running") and rid in self.exports:
                return serialize(rec, session)
            rec.export = {"status": "queued", "progress": 0.0, "requested_at": time.time()}
            files = list(rec.files or [])
            out = serialize(rec, session)
        self.exports[rid] = self.spawn(self._run_export(rid, files))
        return out

    async def _set_export(self, rid: int, **values: Any) -> None:
        async with self.ctx.db.write() as s:
            rec = await s.get(Recording, rid)
            if rec is not None:
                rec.export = {**(rec.export or {}), **values}

    async def _run_export(self, rid: int, files: list[RecordingFile]) -> None:
        directory = recording_dir(self.ctx, rid)
        progress_file = directory / EXPORT_PROGRESS
        loop = asyncio.get_running_loop()
        try:
            await self._set_export(rid, status="running", progress=0.0)
            # a separate process (spawned: imports only PyAV and numpy): decoding never blocks the rooms
            job = functools.partial(export_composite, directory, files, directory / EXPORT_FILE,
                                    progress_file=progress_file)
            future = loop.run_in_executor(self._executor(), job)
            last = -1.0
            while True:
                done, _ = await asyncio.wait({future}, timeout=0.5)
                value = _read_progress(progress_file)
                if value is not None and value - last >= 0.01 and not done:
                    last = value
                    await self._set_export(rid, progress=min(value, 0.99))
                if done:
                    break
            result = future.result()
            await self._set_export(rid, status="ready", progress=1.0, bytes=result["bytes"], codec=result["codec"],
                                   note=result.get("note", ""), error="")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("export of recording %s failed", rid)
            await self._set_export(rid, status="failed", error=str(exc)[:500])
        finally:
            self.exports.pop(rid, None)
            progress_file.unlink(missing_ok=True)

    # ------------------------------------------------------------ shutdown

    async def close(self) -> None:
        """Stop every capture (dumps stay complete on disk) and finalize what we can."""
        for sid in list(self.active):
            try:
                await self.stop(sid, reason="shutdown")  # spawns its finalization
            except Exception:  # noqa: BLE001 - the dumps are complete; start-up recovery finishes the job
                log.exception("stopping the recording of session %s at shutdown failed", sid)
        self.closing = True
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=30)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _read_progress(path: Path) -> Optional[float]:
    try:
        return float(json.loads(path.read_text())["progress"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _last_write(directory: Path) -> float:
    times = [p.stat().st_mtime for p in directory.iterdir() if p.is_file()]
    return max(times) if times else time.time()


async def check_room_mentor(ctx: Context, session_id: int, user_id: int) -> Session:
    """Only the session's own mentor starts and stops its recording."""
    async with ctx.db.read() as s:
        session = await s.get(Session, session_id)
    if session is None:
        raise not_found("session")
    if session.mentor_id != user_id:
        raise forbidden("Only the session's mentor can start or stop recording.")
    return session


async def export_from_cli(settings: Any, recording_id: int, out: Any = None) -> int:
    """``peerlearn recordings export ID``: the same export job, with a progress bar on ``out``."""
    import sys

    from api.db import Database

    out = out or sys.stderr
    db = Database(settings.effective_database_url)
    ctx = Context(db, None, None, settings)  # type: ignore[arg-type]
    mgr = RecordingManager(ctx, lambda _sid: None)
    try:
        try:
            rec = await mgr.request_export(recording_id, 0, "admin")
        except ApiError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        task = mgr.exports.get(recording_id)
        progress_file = recording_dir(ctx, recording_id) / EXPORT_PROGRESS
        width = 40
        while task is not None and not task.done():
            await asyncio.wait({task}, timeout=0.2)
            value = 1.0 if task.done() else (_read_progress(progress_file) or 0.0)
            filled = int(width * value)
            out.write(f"\rexport {recording_id} [{'#' * filled}{'.' * (width - filled)}] {value * 100:5.1f}%")
            out.flush()
        out.write("\n")
        async with db.read() as s:
            row = await s.get(Recording, recording_id)
            rec = serialize(row) if row is not None else rec
        export = rec["export"]
        if export["status"] != "ready":
            print(f"error: export failed: {export.get('error')}", file=sys.stderr)
            return 1
        note = f" ({export['note']})" if export.get("note") else ""
        print(f"{recording_dir(ctx, recording_id) / EXPORT_FILE} ({export['bytes']} bytes, {export['codec']}){note}")
        return 0
    finally:
        await mgr.close()
        await db.dispose()
