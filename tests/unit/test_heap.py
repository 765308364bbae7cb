"""Freed heap goes back to the kernel once per burst of departures (sfu/heap.py)."""

from __future__ import annotations

import asyncio
import platform

import pytest

from sfu.heap import HeapTrimmer, trim


async def test_a_burst_of_departures_trims_once_after_the_last() -> None:
    calls: list[float] = []
    loop = asyncio.get_running_loop()
    trimmer = HeapTrimmer(delay=0.05, trim_fn=lambda: calls.append(loop.time()) or True)
    start = loop.time()
    for _ in range(5):  # a class ending: everyone leaves within a moment
        trimmer.soon()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.15)
    assert len(calls) == 1 and trimmer.trims == 1
    assert calls[0] - start >= 0.05 + 0.04  # after the last departure, not the first


async def test_a_stop_cancels_a_pending_trim_and_a_failing_trim_is_contained() -> None:
    calls: list[int] = []
    trimmer = HeapTrimmer(delay=0.02, trim_fn=lambda: calls.append(1) or True)
    trimmer.soon()
    trimmer.cancel()
    await asyncio.sleep(0.05)
    assert calls == []

    def boom() -> bool:
        raise OSError("no")

    failing = HeapTrimmer(delay=0.01, trim_fn=boom)
    failing.soon()
    await asyncio.sleep(0.03)
    assert failing.trims == 0  # logged, not raised into the loop


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_runs_on_glibc() -> None:
    assert trim() is True
