"""``peerlearn serve --workers N``: the parent starts N workers and keeps N running.

A worker that exits while the parent is not stopping is started again, after a backoff
that doubles with each quick death (``BACKOFF_BASE`` up to ``BACKOFF_MAX``; a worker that
ran ``STABLE_AFTER`` seconds starts the count again), so a crash loop neither spins nor
gives up. Each death is logged with its exit code and, with Redis, the dead worker's room
placement is forgotten at once (api.placement.forget_process), so its rooms move to a live
worker on the pages' first rejoin rather than after the placement TTLs.

The parent writes what it knows to ``<data_dir>/workers.json`` after every change; each
worker reads it for ``/readyz`` (``workers``) and ``/metrics`` (``peerlearn_workers_*``),
so an operator sees a machine running short without asking the parent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("api.supervisor")

BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0
STATUS_FILE = "workers.json"
#: seconds a worker has after SIGTERM (its rooms closed, in-flight requests answered) before it is killed
STOP_GRACE = 30.0


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_deaths: int = 0  # consecutive deaths within STABLE_AFTER of a start: the backoff's exponent
    last_exit: int | None = None
    restart_at: float | None = None


class Supervisor:
    """Starts, watches and restarts the workers; ``run()`` returns when asked to stop."""

    def __init__(
        self,
        spawn: Callable[[int], subprocess.Popen[bytes]],
        count: int,
        data_dir: Path,
        *,
        on_death: Callable[[int], None] = lambda pid: None,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        stable_after: float = STABLE_AFTER,
    ) -> None:
        self._spawn = spawn
        self.workers = [Worker(i) for i in range(count)]
        self.status_path = data_dir / STATUS_FILE
        self._on_death = on_death
        self.backoff_base, self.backoff_max, self.stable_after = backoff_base, backoff_max, stable_after
        self.stopping = False
        self._signalled: set[int] = set()

    def start(self) -> None:
        for w in self.workers:
            self._start(w)
        self._write_status()

    def stop(self, *_: object) -> None:
        """Signal handler: stop restarting, pass SIGTERM on to the workers."""
        self.stopping = True
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
                self._signalled.add(w.proc.pid)

    def _start(self, w: Worker) -> int:
        w.proc = self._spawn(w.index)
        w.started_at = time.monotonic()
        w.restart_at = None
        return w.proc.pid

    def check(self, now: float | None = None) -> None:
        """One pass: notice deaths, schedule restarts, start workers whose backoff is over."""
        now = time.monotonic() if now is None else now
        changed = False
        for w in self.workers:
            if w.proc is not None and (code := w.proc.poll()) is not None:
                pid = w.proc.pid
                w.proc, w.last_exit = None, code
                w.quick_deaths = w.quick_deaths + 1 if now - w.started_at < self.stable_after else 1
                delay = min(self.backoff_max, self.backoff_base * 2 ** (w.quick_deaths - 1))
                w.restart_at = now + delay
                log.warning(
                    "worker %d (pid %d) exited with code %s after %.1fs; restarting in %.1fs",
                    w.index,
                    pid,
                    code,
                    now - w.started_at,
                    delay,
                )
                try:
                    self._on_death(pid)
                except Exception as exc:  # noqa: BLE001 - cleanup is a speed-up, the TTLs still hold
                    log.warning("after worker %d died: %r", w.index, exc)
                changed = True
            if w.proc is None and w.restart_at is not None and now >= w.restart_at and not self.stopping:
                pid = self._start(w)
                w.restarts += 1
                log.warning("worker %d restarted (pid %d, restart %d)", w.index, pid, w.restarts)
                changed = True
        if changed:
            self._write_status()

    def run(self, interval: float = 0.1, grace: float = STOP_GRACE) -> int:
        """Watch until :meth:`stop`; then stop the workers (see :meth:`reap`) and return the
        worst exit code."""
        while not self.stopping:
            self.check()
            time.sleep(interval)
        codes = self.reap(grace, interval)
        self.status_path.unlink(missing_ok=True)
        return max((abs(c) for c in codes), default=0)

    def reap(self, grace: float, interval: float = 0.1, now: Callable[[], float] = time.monotonic) -> list[int]:
        """Every worker gets SIGTERM once (also one started while the signal was being handled,
        which ``stop`` could not see) and ``grace`` seconds to finish; one still running after
        that is killed, so the parent never outlives a stop by more than the grace."""
        deadline = now() + grace
        signalled: set[int] = set()
        codes: list[int] = []
        while True:
            live = [w for w in self.workers if w.proc is not None]
            for w in live:
                proc = w.proc
                assert proc is not None
                code = proc.poll()
                if code is not None:
                    codes.append(code)
                    w.proc, w.last_exit = None, code
                elif now() >= deadline:
                    log.warning(
                        "worker %d (pid %d) still running %.0fs after SIGTERM: killed", w.index, proc.pid, grace
                    )
                    proc.kill()
                    codes.append(proc.wait())
                    w.proc, w.last_exit = None, codes[-1]
                elif proc.pid not in signalled:
                    signalled.add(proc.pid)
                    if proc.pid not in self._signalled:
                        proc.send_signal(signal.SIGTERM)
            if all(w.proc is None for w in self.workers):
                return codes
            time.sleep(interval)

    def status(self) -> dict[str, Any]:
        return {
            "supervisor_pid": os.getpid(),
            "expected": len(self.workers),
            "workers": [
                {
                    "index": w.index,
                    "pid": w.proc.pid if w.proc is not None else None,
                    "state": "running" if w.proc is not None else "restarting",
                    "restarts": w.restarts,
                    "last_exit": w.last_exit,
                }
                for w in self.workers
            ],
        }

    def _write_status(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status()))
        tmp.replace(self.status_path)  # atomic: a worker never reads half a file


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The parent's last word on the workers, or None without a live parent."""
    try:
        status: dict[str, Any] = json.loads((data_dir / STATUS_FILE).read_text())
        os.kill(int(status["supervisor_pid"]), 0)  # a file left by a parent that is gone says nothing
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return status


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """What /readyz shows: how many of the expected workers run, and restarts so far."""
    workers = status.get("workers", [])
    running = sum(1 for w in workers if w.get("state") == "running")
    return {
        "healthy": running == status.get("expected"),
        "running": running,
        "expected": status.get("expected"),
        "restarts": sum(int(w.get("restarts", 0)) for w in workers),
        "workers": workers,
    }


class WorkerHealthCollector(Collector):
    """``/metrics``: the workers the parent runs, read from its status file at each scrape."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterable[Any]:
        status = read_status(self.data_dir)
        if status is None:
            return
        expected = GaugeMetricFamily("peerlearn_workers_expected", "Workers `serve --workers N` keeps running")
        expected.add_metric([], float(status.get("expected", 0)))
        up = GaugeMetricFamily(
            "peerlearn_worker_up", "1 while the worker runs, 0 while it waits to restart", labels=["index"]
        )
        restarts = CounterMetricFamily(
            "peerlearn_worker_restarts", "Times the parent restarted this worker after it died", labels=["index"]
        )
        for w in status.get("workers", []):
            up.add_metric([str(w["index"])], 1.0 if w.get("state") == "running" else 0.0)
            restarts.add_metric([str(w["index"])], float(w.get("restarts", 0)))
        yield from (expected, up, restarts)
