"""The per-process recording manager: start and stop per live room, finalization, recovery
after a crash, and the composite export job."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import select

from api.context import Context
from api.jobs.composite_export import export_composite
from api.models import Recording, RecordingFile, RecordingStatus, Role, Session, SessionStatus, User, utcnow
from api.services import notifications, settings_store
from api.services.errors import Conflict, DomainError, Unavailable
from api.services.recordings import EXPORT_FILE, EXPORT_PROGRESS, load_visible, recording_dir, serialize
from sfu import Router
from sfu import observer as ev
from sfu.recording import (
    META_FILE,
    Recorder,
    RecorderError,
    capture_in_progress,
    finalize,
    lock_dir,
    unlock_dir,
)

log = logging.getLogger(__name__)

#: a row with no directory younger than this may belong to a process that is just starting it
ORPHAN_GRACE = timedelta(seconds=60)


async def _notify_admins(ctx: Context, title: str, body: str, link: str = "/admin/recordings") -> None:
    async with ctx.db.write() as s:
        admins = (await s.scalars(select(User.id).where(User.role == Role.admin, User.is_active.is_(True)))).all()
        notes = [notifications.add(s, uid, "recording.failed", title, body, link) for uid in admins]
        await s.flush()
    await notifications.push(ctx.broker, notes)


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
        self._closed = False

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
        # A capture the worker that held this room left behind when it died goes on (whoever
        # started it, whatever the default): the class is one recording, the gap marked.
        interrupted = await self._interrupted(sid)
        if interrupted is None and not (await settings_store.get_all(self.ctx.db))["recording_default"]:
            return
        if not router.closed and sid not in self.active:
            try:
                await self.start(sid, resume=interrupted)
            except DomainError as exc:
                log.warning("automatic recording of session %s: %s", sid, exc.message)

    async def _interrupted(self, sid: int) -> Optional[int]:
        """The newest capture of this session that a dead process left within the grace, if any."""
        async with self.ctx.db.read() as s:
            rids = (
                await s.scalars(
                    select(Recording.id)
                    .where(Recording.session_id == sid, Recording.status == RecordingStatus.recording)
                    .order_by(Recording.id.desc())
                )
            ).all()
        mine = {rid for rid, _r in self.active.values()}
        grace = self.ctx.settings.recording_resume_grace_seconds
        for rid in rids:
            directory = recording_dir(self.ctx, rid)
            if rid in mine or not (directory / META_FILE).exists() or capture_in_progress(directory):
                continue
            if time.time() - _last_write(directory) <= grace:
                return rid
        return None

    async def _claim(self, rid: int) -> Optional[int]:
        """The lock of an interrupted capture's directory, if it is still to be continued: taken
        first, so start-up recovery (which finalizes under the same lock) cannot race us."""
        try:
            fd = lock_dir(recording_dir(self.ctx, rid))
        except OSError:
            return None
        if fd is None:
            return None
        try:
            async with self.ctx.db.read() as s:
                rec = await s.get(Recording, rid)
                still = rec is not None and rec.status == RecordingStatus.recording
        except BaseException:
            unlock_dir(fd)
            raise
        if not still:
            unlock_dir(fd)
            return None
        return fd

    def status(self, sid: int) -> Optional[int]:
        entry = self.active.get(sid)
        return entry[0] if entry else None

    async def start(self, sid: int, *, resume: Optional[int] = None) -> Recording:
        """Record the session's room; ``resume``: an interrupted capture of it to continue."""
        lock = self._starting.setdefault(sid, asyncio.Lock())
        async with lock:
            router = self.router_of(sid)
            if router is None or router.closed:
                raise Conflict("The room is not open: start the class first.", code="room_not_open")
            if sid in self.active:
                rid = self.active[sid][0]
                async with self.ctx.db.read() as s:
                    return await s.get(Recording, rid)  # type: ignore[return-value]
            lock_fd = await self._claim(resume) if resume is not None else None
            if lock_fd is not None and resume is not None:
                rid = resume
                log.warning("recording %s of session %s goes on after an interruption", rid, sid)
            else:
                rid = await self._new_row(sid)
            settings = self.ctx.settings
            recorder = Recorder(
                router,
                recording_dir(self.ctx, rid),
                on_error=self._on_error_for(sid, rid),
                flush_interval=settings.recording_flush_interval_seconds,
                sync_interval=settings.recording_sync_interval_seconds,
                min_free_bytes=settings.recording_min_free_bytes,
            )
            try:
                recorder.start({"recording_id": rid, "session_id": sid}, lock_fd=lock_fd)
            except (OSError, RecorderError) as exc:
                message = f"Recording could not start: {getattr(exc, 'strerror', None) or exc}."
                if rid != resume:  # an interrupted part stays as it is: recovery finalizes it
                    await self._mark_failed(rid, message)
                raise Unavailable(message, code="recording_unavailable") from exc
            self.active[sid] = (rid, recorder)
            async with self.ctx.db.read() as s:
                return await s.get(Recording, rid)  # type: ignore[return-value]

    async def _new_row(self, sid: int) -> int:
        async with self.ctx.db.write() as s:
            rec = Recording(
                session_id=sid,
                status=RecordingStatus.recording,
                started_at=utcnow(),
                participants=[],
                files=[],
                bytes=0,
                duration_ms=0,
                error="",
            )
            s.add(rec)
            await s.flush()
            return rec.id

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
            await _notify_admins(
                self.ctx, f"Recording of session {sid} failed", message, f"/admin/recordings?session_id={sid}"
            )
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

    async def finalize(self, rid: int, *, locked: bool = False) -> None:
        """Dumps -> WebM files (a thread: muxing without codecs is cheap but blocking), under the
        directory's lock so periodic recovery on any worker leaves it alone (``locked``: the
        caller holds it)."""
        directory = recording_dir(self.ctx, rid)
        lock_fd: Optional[int] = None
        if not locked and directory.exists():
            lock_fd = lock_dir(directory)
            if lock_fd is None:
                return  # another process finalizes it (or, recovering, took it first)
        try:
            await self._finalize(rid, directory)
        finally:
            unlock_dir(lock_fd)

    async def _finalize(self, rid: int, directory: Path) -> None:
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
            files.append(
                {
                    "index": f.index,
                    "name": f.name,
                    "display_name": f.display_name,
                    "role": f.role,
                    "bytes": f.bytes,
                    "duration_ms": f.duration_ms,
                    "offset_ms": f.offset_ms,
                    "streams": [dataclasses.asdict(st) for st in f.streams],
                    "user_id": f.app_data.get("user_id"),
                }
            )
        async with self.ctx.db.write() as s:
            rec = await s.get(Recording, rid)
            if rec is None:
                return  # deleted meanwhile
            rec.files = files
            rec.participants = [
                {"user_id": f["user_id"], "display_name": f["display_name"], "role": f["role"]} for f in files
            ]
            rec.bytes = result.bytes
            rec.duration_ms = result.duration_ms
            rec.gaps = list(result.gaps)
            rec.status = RecordingStatus.ready
            if rec.ended_at is None:
                rec.ended_at = utcnow()

    async def recover(self) -> int:
        """Captures a dead process left behind (no live process holds their lock) are finalized:
        at start-up and then periodically. One whose class is still live and whose last write is
        recent is left for the grace period: its room may reopen on a live worker and go on
        recording into it (``_interrupted``)."""
        async with self.ctx.db.read() as s:
            rows = (
                await s.execute(
                    select(Recording.id, Recording.started_at, Recording.status, Session.status)
                    .join(Session, Session.id == Recording.session_id)
                    .where(Recording.status.in_((RecordingStatus.recording, RecordingStatus.processing)))
                )
            ).all()
        recovered = 0
        mine = {rid for rid, _r in self.active.values()}
        grace = self.ctx.settings.recording_resume_grace_seconds
        for rid, started, status, session_status in rows:
            directory = recording_dir(self.ctx, rid)
            if rid in mine or capture_in_progress(directory):
                continue
            if not directory.exists():
                if utcnow() - started < ORPHAN_GRACE:
                    continue  # maybe another process is creating it right now
                await self._mark_failed(rid, "The recording was interrupted before anything was captured.")
                continue
            resumable = status == RecordingStatus.recording and session_status == SessionStatus.live
            if resumable and time.time() - _last_write(directory) < grace:
                continue
            lock_fd = lock_dir(directory)
            if lock_fd is None:
                continue  # a live process took it meanwhile
            try:
                async with self.ctx.db.write() as s:
                    rec = await s.get(Recording, rid)
                    if rec is None or rec.status not in (RecordingStatus.recording, RecordingStatus.processing):
                        continue
                    if rec.status == RecordingStatus.recording:
                        rec.status = RecordingStatus.processing
                        rec.error = "Recovered after an interruption: kept what was captured before it."
                        rec.ended_at = datetime.fromtimestamp(_last_write(directory), timezone.utc)
                await self.finalize(rid, locked=True)
            finally:
                unlock_dir(lock_fd)
            recovered += 1
        return recovered

    # ------------------------------------------------------------ export

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def request_export(self, rid: int, user_id: int, role: str) -> dict[str, Any]:
        async with self.ctx.db.write() as s:
            rec, session = await load_visible(s, rid, user_id, role)
            if rec.status != RecordingStatus.ready:
                raise Conflict(f"This recording is {rec.status.value}.", code="not_ready")
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
            job = functools.partial(
                export_composite, directory, files, directory / EXPORT_FILE, progress_file=progress_file
            )
            future = loop.run_in_executor(self._executor(), job)
            last = -1.0
            while True:
                done, _ = await asyncio.wait({future}, timeout=0.5)
                value = read_progress(progress_file)
                if value is not None and value - last >= 0.01 and not done:
                    last = value
                    await self._set_export(rid, progress=min(value, 0.99))
                if done:
                    break
            result = future.result()
            await self._set_export(
                rid,
                status="ready",
                progress=1.0,
                bytes=result["bytes"],
                codec=result["codec"],
                note=result.get("note", ""),
                error="",
            )
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
        """Stop every capture (dumps stay complete on disk) and finalize what we can (idempotent)."""
        if self._closed:
            return
        self._closed = True
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


def read_progress(path: Path) -> Optional[float]:
    try:
        return float(json.loads(path.read_text())["progress"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _last_write(directory: Path) -> float:
    times = [p.stat().st_mtime for p in directory.iterdir() if p.is_file()]
    return max(times) if times else time.time()
