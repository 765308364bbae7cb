"""``peerlearn recordings ...``: the recording commands of the CLI (see api/cli.py)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from api.context import Context
from api.db import Database
from api.errors import ApiError
from api.models import Recording
from api.services.errors import DomainError
from api.services.recording_manager import RecordingManager, read_progress
from api.services.recordings import EXPORT_FILE, EXPORT_PROGRESS, recording_dir, serialize


async def export_recording(settings: Any, recording_id: int, out: Any = None) -> int:
    """``peerlearn recordings export ID``: the same export job, with a progress bar on ``out``."""
    out = out or sys.stderr
    db = Database(settings.effective_database_url)
    ctx = Context(db, None, None, settings)  # type: ignore[arg-type]
    mgr = RecordingManager(ctx, lambda _sid: None)
    try:
        try:
            rec = await mgr.request_export(recording_id, 0, "admin")
        except (ApiError, DomainError) as exc:  # the database's 503 is still an ApiError
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        task = mgr.exports.get(recording_id)
        progress_file = recording_dir(ctx, recording_id) / EXPORT_PROGRESS
        width = 40
        while task is not None and not task.done():
            await asyncio.wait({task}, timeout=0.2)
            value = 1.0 if task.done() else (read_progress(progress_file) or 0.0)
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
