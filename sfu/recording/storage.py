"""A recording's directory: its file names, its lock, atomic metadata writes.

While a capture runs, its directory holds an ``flock``-ed ``.lock`` file, so
start-up recovery can tell a live capture (another process) from one a crash
left behind.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Optional

META_FILE = "recording.json"
LOCK_FILE = ".lock"
RESULT_FILE = "result.json"
OUTPUT_SUFFIX = ".webm"


class RecorderError(Exception):
    pass


# ---------------------------------------------------------------- locking


def lock_dir(directory: Path, *, blocking: bool = False) -> Optional[int]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock_dir(fd: Optional[int]) -> None:
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def capture_in_progress(directory: Path) -> bool:
    """True while some live process (this one included) records into ``directory``."""
    if not (directory / LOCK_FILE).exists():
        return False
    fd = lock_dir(directory)
    if fd is None:
        return True
    unlock_dir(fd)
    return False


def continued_meta(directory: Path, now: float, meta: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The metadata of a capture that goes on in ``directory`` after an interruption, or None.

    A directory with metadata already holds the first part of this recording (its process
    died; the caller holds the lock): the recording keeps its start, and the time between the
    last write of the earlier part and ``now`` becomes a gap, which finalization reports.
    """
    try:
        earlier = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    writes = [p.stat().st_mtime for p in directory.iterdir() if p.is_file() and p.name not in (META_FILE, LOCK_FILE)]
    last = max(writes, default=float(earlier.get("started_at") or now))
    gaps = list(earlier.get("gaps") or [])
    gaps.append({"from": min(last, now), "to": now})
    return {**meta, **earlier, "gaps": gaps}


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
