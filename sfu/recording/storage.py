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
