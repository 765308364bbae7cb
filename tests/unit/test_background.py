"""Periodic: the started/exited pair, idempotent start and stop, a failing run never ends it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from api.background import Periodic


async def test_runs_until_stopped_and_stops_once() -> None:
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    loop = Periodic("test-job", job, interval=0.01)
    loop.start()
    loop.start()  # a second start is harmless: still one task
    await asyncio.wait_for(ran.wait(), 5)
    assert loop.running and loop.started.is_set()
    await asyncio.wait_for(loop.stop(), 5)
    assert loop.exited.is_set() and not loop.running
    await asyncio.wait_for(loop.stop(), 5)  # and so is a second stop


async def test_stop_without_start_and_right_after_start() -> None:
    async def job() -> None:
        pass

    never = Periodic("never-started", job, interval=1.0)
    await asyncio.wait_for(never.stop(), 5)
    assert not never.started.is_set()
    # Cancelled before its first step, a task would never reach its finally: stop waits for it.
    quick = Periodic("stopped-at-once", job, interval=1.0, delay=60.0)
    quick.start()
    await asyncio.wait_for(quick.stop(), 5)
    assert quick.exited.is_set() and quick.runs == 0


async def test_a_failing_run_is_logged_and_the_next_one_comes(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    second = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        second.set()

    loop = Periodic("flaky-job", job, interval=0.01)
    with caplog.at_level(logging.ERROR, logger="api.background"):
        loop.start()
        await asyncio.wait_for(second.wait(), 5)
        await loop.stop()
    assert any("flaky-job failed" in r.getMessage() and r.exc_info for r in caplog.records)
