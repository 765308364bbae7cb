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
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
