"""`serve --workers N`'s parent: a dead worker is restarted with backoff and reported."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
from pathlib import Path
from typing import cast

from api.supervisor import Supervisor, read_status, summary

_pids = itertools.count(1000)


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.code: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.code

    def wait(self) -> int:
        return self.code if self.code is not None else 0

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.code = 0  # a worker stops cleanly on SIGTERM

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.code = -signal.SIGKILL


class StuckProcess(FakeProcess):
    """A worker whose shutdown hangs: SIGTERM is noted and nothing happens."""

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)


def make(tmp_path: Path) -> tuple[Supervisor, list[FakeProcess], list[int]]:
    spawned: list[FakeProcess] = []
    deaths: list[int] = []

    def spawn(index: int) -> subprocess.Popen[bytes]:
        spawned.append(FakeProcess())
        return cast("subprocess.Popen[bytes]", spawned[-1])

    sup = Supervisor(spawn, 2, tmp_path, on_death=deaths.append)
    sup.start()
    return sup, spawned, deaths


def test_a_dead_worker_is_restarted_after_a_backoff_that_doubles_while_it_keeps_dying(tmp_path: Path) -> None:
    sup, spawned, deaths = make(tmp_path)
    t0 = sup.workers[0].started_at
    spawned[0].code = -9
    sup.check(t0 + 1)
    assert deaths == [spawned[0].pid]  # its placement is released at once
    state = summary(json.loads((tmp_path / "workers.json").read_text()))
    assert (state["healthy"], state["running"], state["expected"]) == (False, 1, 2)
    sup.check(t0 + 1.4)
    assert len(spawned) == 2  # not before the backoff (0.5 s)
    sup.check(t0 + 1.5)
    assert len(spawned) == 3 and sup.workers[0].restarts == 1
    # Dies again at once: the next wait is twice as long.
    t1 = sup.workers[0].started_at
    spawned[2].code = 1
    sup.check(t1 + 0.1)
    assert sup.workers[0].restart_at == t1 + 0.1 + 1.0
    sup.check(t1 + 1.1)
    assert len(spawned) == 4
    # After a long healthy run, a death starts the backoff over.
    t2 = sup.workers[0].started_at
    spawned[3].code = 1
    sup.check(t2 + 60)
    assert sup.workers[0].restart_at == t2 + 60 + 0.5
    state = summary(json.loads((tmp_path / "workers.json").read_text()))
    assert state["restarts"] == 2 and state["workers"][0]["last_exit"] == 1


def test_no_restart_once_stopping_and_the_status_of_a_gone_parent_is_ignored(tmp_path: Path) -> None:
    sup, spawned, _ = make(tmp_path)
    assert read_status(tmp_path) is not None  # this process is the "parent": alive
    sup.stop()
    assert all(p.signals for p in spawned)
    sup.check(sup.workers[0].started_at + 100)
    assert len(spawned) == 2
    assert sup.run() == 0
    assert read_status(tmp_path) is None
    (tmp_path / "workers.json").write_text(json.dumps({"supervisor_pid": 2**22 + 7, "expected": 2, "workers": []}))
    assert read_status(tmp_path) is None


def test_a_stop_ends_every_worker_even_one_that_hangs_or_started_during_the_signal(tmp_path: Path) -> None:
    """SIGTERM to the parent of ``serve --workers 2`` once left a worker running for minutes:
    a worker started while the stop was being handled never got SIGTERM, and one whose shutdown
    hangs was waited for forever. Now each gets SIGTERM and, after the grace, SIGKILL."""
    sup, spawned, _ = make(tmp_path)
    stuck = StuckProcess()
    sup.workers[0].proc = cast("subprocess.Popen[bytes]", stuck)
    sup.stop()
    late = FakeProcess()  # the worker restarted between the signal and the watch loop's end
    sup.workers[1].proc = cast("subprocess.Popen[bytes]", late)
    clock = itertools.count(0.0, 1.0)
    codes = sup.reap(grace=5, interval=0, now=lambda: next(clock))
    assert late.signals == [signal.SIGTERM]  # signalled once, and it stopped cleanly
    assert stuck.signals == [signal.SIGTERM, signal.SIGKILL]  # not signalled twice, then killed
    assert sorted(codes) == [-signal.SIGKILL, 0]
    assert all(w.proc is None for w in sup.workers)
