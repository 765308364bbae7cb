"""Freed C heap handed back to the kernel once participants have left.

A participant's peer connection leaves behind many small blocks (aiortc's jitter
buffers and estimators, NACK histories, per-packet ``bytes``) in glibc's arenas.
Freed, they mostly stay there: glibc only returns the top of an arena, and a
long-lived block above the holes pins them. Measured with 12 rounds of 2 rooms
of 5 joining and leaving one server, RSS climbed 195 -> 209 MB while glibc's
``in_use`` stayed flat and its ``free`` grew; ``malloc_trim(0)`` gave the 10 MB
back at once (docs/benchmarks.md, "Memory across rejoins"). So a few seconds
after the last of a burst of departures the process trims once: one call per
burst, a few milliseconds of a quiet loop, nothing off glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable
from typing import Optional

log = logging.getLogger(__name__)

#: seconds after the last departure of a burst (a class ending is many departures at once)
TRIM_DELAY = 3.0


def _malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        fn = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to trim with
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def trim() -> bool:
    """Return freed heap pages to the kernel; False where glibc's ``malloc_trim`` is missing."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


class HeapTrimmer:
    """``soon()`` after each departure; the trim runs once, ``delay`` s after the last one."""

    def __init__(self, delay: float = TRIM_DELAY, trim_fn: Callable[[], bool] = trim) -> None:
        self.delay = delay
        self._trim = trim_fn
        self._handle: Optional[asyncio.TimerHandle] = None
        self.trims = 0

    def soon(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_later(self.delay, self._run)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        self._handle = None
        try:
            if self._trim():
                self.trims += 1
        except Exception:  # noqa: BLE001 - memory hygiene must never hurt a room
            log.exception("malloc_trim failed")
