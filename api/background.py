"""``Periodic``: a job run on a clock, with the started/exited pair of aiortc's RTCRtpSender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``job()`` after ``delay`` seconds, then every ``interval`` seconds, until stopped.

    A failing run is logged with its traceback and the next one still comes. ``start`` and
    ``stop`` are idempotent: a second call, or ``stop`` without ``start``, does nothing.
    """

    def __init__(self, name: str, job: Callable[[], Awaitable[object]], *, interval: float, delay: float = 0.0) -> None:
        self.name = name
        self.interval = interval
        self.delay = delay
        self.runs = 0
        self.started = asyncio.Event()
        self.exited = asyncio.Event()
        self._job = job
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self.exited.is_set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        # A task cancelled before its first step never runs its finally: wait until it has.
        await self.started.wait()
        # The flag as well as the cancel: a job may swallow a cancel (Python 3.11's
        # asyncio.wait_for does when its awaitable completes at that moment).
        self._stopping = True
        self._task.cancel()
        await self.exited.wait()

    async def _run(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(self.delay)
            while not self._stopping:
                try:
                    await self._job()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one failed run never ends the schedule
                    log.exception("%s failed", self.name)
                self.runs += 1
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            pass
        finally:
            self.exited.set()
