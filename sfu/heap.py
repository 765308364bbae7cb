"""Keep big, short-lived buffers out of glibc's heap (issue 12's memory soak).

asyncio's selector transports ask ``recv``/``recvfrom`` for 256 KiB per read
and shrink the result to what arrived. glibc serves requests that large with
mmap only until the first such block is freed; from then on its *dynamic*
mmap threshold has moved above them and they are carved out of the heap. In
the SFU's heap, where one rewritten copy of every video packet lives ~15 s in
a consumer's NACK history, a fresh 256 KiB hole is rarely free: each such read
extends the heap, the packets allocated next pin the remainder, and the heap
grows while the live data stays flat (2 rooms x 5: RSS +2 MB/min, glibc's
in-use bytes constant, its free bytes growing with RSS).

The SFU's own UDP sockets read into 8 KiB (``aiortc_bridge.RECV_MAX_SIZE``);
:func:`pin_mmap_threshold` fixes glibc's threshold at its default (128 KiB),
which also turns the dynamic adjustment off, so the remaining big reads (the
websockets' and HTTP's TCP reads, any socket we do not tune) keep going to
their own mappings and back to the kernel when freed. Off glibc, a no-op.

What is freed inside the heap mostly stays there too: a participant's peer connection leaves many small
blocks (aiortc's jitter buffers and estimators, NACK histories) behind, and glibc only returns the top of
an arena. 12 rounds of 2 rooms of 5 joining and leaving one server took RSS 195 -> 209 MB with glibc's
in-use bytes flat and its free bytes growing; ``malloc_trim(0)`` gave the 10 MB back at once
(docs/benchmarks.md, "Memory across rejoins"). :class:`HeapTrimmer` trims once, a few seconds after the
last of a burst of departures (the application calls ``soon()`` per departure): one call per burst, a few
milliseconds of a quiet loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Optional

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 128 * 1024  # glibc's default, made fixed

_pinned = False


def pin_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``size`` (process-wide, once); False where glibc is absent."""
    global _pinned
    if _pinned:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _pinned = bool(mallopt(M_MMAP_THRESHOLD, size))
    return _pinned


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
    return fn


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
