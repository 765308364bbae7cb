"""Opt-in allocation tracing for memory soaks (``PEERLEARN_TRACEMALLOC``).

A debugging aid, off by default (tracemalloc slows every allocation):

    PEERLEARN_TRACEMALLOC=10 peerlearn serve ...      # keep 10 frames per allocation

starts :mod:`tracemalloc` once the server is up (under tracing the migrations
crawl, and growth under load is what it is for; ``PEERLEARN_TRACEMALLOC_DELAY``
seconds later if set), waits
``PEERLEARN_TRACEMALLOC_WARMUP`` seconds (default 60) and then every
``PEERLEARN_TRACEMALLOC_INTERVAL`` seconds (default 60) writes a snapshot to
``<data dir>/tracemalloc/NNNN.snap`` and one line (traced MB, RSS) to
``<data dir>/tracemalloc/index.txt``. The server only takes and dumps
snapshots (C code, about a second); grouping and comparing them is pure Python
over millions of traces and took minutes of a blocked event loop in-process,
so it is done offline:

    python -m api.memtrace DATA_DIR/tracemalloc            # first snapshot vs last
    python -m api.memtrace DATA_DIR/tracemalloc 3 12       # snapshot 3 vs 12

The first snapshot is the baseline so that warm-up allocations (imports,
caches, the first rooms' buffers) do not hide what keeps growing. Read from
the environment directly rather than :class:`~api.settings.Settings`: it is
not a deployment setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import sys
import time
import tracemalloc
from pathlib import Path

log = logging.getLogger(__name__)


def frames_from_env() -> int:
    """Frames to keep per allocation, 0 when tracing is off."""
    raw = os.environ.get("PEERLEARN_TRACEMALLOC", "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return 0
    if raw in ("1", "true", "yes", "on"):
        return 10
    return max(1, int(raw))


def start_if_enabled() -> bool:
    frames = frames_from_env()
    if frames and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    return tracemalloc.is_tracing()


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mallinfo() -> dict[str, float]:
    """glibc's view of the C heap in MB: ``in_use`` (allocated blocks), ``free`` (freed but kept in the
    arenas), ``mmap`` (large blocks); {} off glibc. RSS rising with ``free`` is fragmentation / memory
    not returned to the kernel; with ``in_use`` it is live allocations (tracemalloc sees only Python's)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    mi = fn()
    return {"arena": mi.arena / 1e6, "in_use": mi.uordblks / 1e6, "free": mi.fordblks / 1e6, "mmap": mi.hblkhd / 1e6}


def _memstats_line() -> str:
    mi = mallinfo()
    c_heap = " ".join(f"{k} {v:.1f}" for k, v in mi.items())
    traced = f" traced {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB" if tracemalloc.is_tracing() else ""
    return (
        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} rss {_rss_mb():.1f} MB{traced} "
        f"malloc(MB) {c_heap} python_objects {len(gc.get_objects())}"
    )


async def memstats_periodically(data_dir: Path) -> None:
    """``PEERLEARN_MEMSTATS=SECONDS``: append RSS, glibc's heap figures and the count of Python objects
    to ``<data dir>/memstats.txt`` every SECONDS, without tracemalloc's cost."""
    every = float(os.environ.get("PEERLEARN_MEMSTATS", "0") or 0)
    if every <= 0:
        return
    out = Path(data_dir) / "memstats.txt"
    while True:
        try:
            with out.open("a") as f:
                f.write(_memstats_line() + "\n")
        except Exception:  # a diagnostic must never take the server down
            log.exception("memstats failed")
        await asyncio.sleep(every)


def _rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def dump_periodically(data_dir: Path, interval: float | None = None, warmup: float | None = None) -> None:
    """Run for the server's lifetime (cancel it at shutdown); no-op unless ``PEERLEARN_TRACEMALLOC`` is set.

    ``PEERLEARN_TRACEMALLOC_DELAY`` seconds (default 0) pass before tracing starts: a soak's participants
    join untraced (traced, the joins' database writes slowed down enough to time out the one-connection
    write pool), and what grows afterwards is still allocated under tracing.
    """
    if not frames_from_env():
        return
    await asyncio.sleep(float(os.environ.get("PEERLEARN_TRACEMALLOC_DELAY", "0")))
    start_if_enabled()
    interval = interval or float(os.environ.get("PEERLEARN_TRACEMALLOC_INTERVAL", "60"))
    warmup = warmup if warmup is not None else float(os.environ.get("PEERLEARN_TRACEMALLOC_WARMUP", "60"))
    out = Path(data_dir) / "tracemalloc"
    out.mkdir(parents=True, exist_ok=True)
    log.warning(
        "tracemalloc on (%d frames): snapshots every %.0f s in %s after %.0f s",
        tracemalloc.get_traceback_limit(),
        interval,
        out,
        warmup,
    )
    await asyncio.sleep(warmup)
    n = 0
    while True:
        try:
            t = time.perf_counter()
            snap = tracemalloc.take_snapshot()
            snap.dump(str(out / f"{n:04d}.snap"))
            peak = tracemalloc.get_traced_memory()[1]
            with (out / "index.txt").open("a") as f:
                f.write(
                    f"{n:04d} peak {peak / 1e6:.1f} MB (snapshot took {time.perf_counter() - t:.2f} s) "
                    f"{_memstats_line()}\n"
                )
            del snap
        except Exception:  # a diagnostic must never take the server down
            log.exception("tracemalloc snapshot failed")
        n += 1
        await asyncio.sleep(interval)


_IGNORE = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def diff_report(base: tracemalloc.Snapshot, now: tracemalloc.Snapshot, top: int = 30, tracebacks: int = 12) -> str:
    """What grew from ``base`` to ``now``: the top entries by line, then by traceback."""
    base, now = base.filter_traces(_IGNORE), now.filter_traces(_IGNORE)
    traced_base = sum(s.size for s in base.statistics("filename")) / 1e6
    traced_now = sum(s.size for s in now.statistics("filename")) / 1e6
    lines = [
        f"traced {traced_base:.1f} MB -> {traced_now:.1f} MB",
        "--- by line: size_diff, count_diff, size, count, where",
    ]
    for st in now.compare_to(base, "lineno")[:top]:
        frame = st.traceback[0]
        lines.append(
            f"{st.size_diff / 1024:+10.1f} KiB {st.count_diff:+8d}  {st.size / 1024:10.1f} KiB "
            f"{st.count:8d}  {frame.filename}:{frame.lineno}"
        )
    lines.append(f"--- by traceback (top {tracebacks}, innermost frame last)")
    for st in now.compare_to(base, "traceback")[:tracebacks]:
        lines.append(f"{st.size_diff / 1024:+10.1f} KiB {st.count_diff:+8d} blocks, now {st.size / 1024:.1f} KiB")
        lines.extend("    " + frame for frame in st.traceback.format(limit=10))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compare two tracemalloc snapshots the server dumped.")
    ap.add_argument("dir", type=Path, help="DATA_DIR/tracemalloc")
    ap.add_argument("first", nargs="?", type=int, default=0)
    ap.add_argument("last", nargs="?", type=int, default=-1)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    snaps = sorted(args.dir.glob("*.snap"))
    if len(snaps) < 2:
        print(f"need two snapshots in {args.dir}, found {len(snaps)}", file=sys.stderr)
        return 1
    a, b = snaps[args.first], snaps[args.last]
    print(f"=== {a.name} -> {b.name}")
    print(diff_report(tracemalloc.Snapshot.load(str(a)), tracemalloc.Snapshot.load(str(b)), top=args.top), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
