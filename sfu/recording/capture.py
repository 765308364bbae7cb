"""Live capture: tap the forwarded RTP of a router, one dump file per track.

An RTP tap on the router appends every packet a producer forwards to that
track's dump file (``rtp_dump``), with its arrival time and the publisher's
RTCP sender reports. Writes are buffered in memory and written by a timer
every ``flush_interval`` (a killed process loses at most that much), fsynced
every ``sync_interval``. A write error or a full disk stops the recording
(``on_error``), never the room.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..room import observer as ev
from .rtp_dump import SUFFIX, DumpWriter, dumps_in
from .storage import (
    META_FILE,
    RecorderError,
    continued_meta,
    lock_dir,
    sync_dir,
    unlock_dir,
    write_json_atomic,
)

if TYPE_CHECKING:
    from ..room.producer import Producer
    from ..room.router import Router

logger = logging.getLogger(__name__)

ErrorCallback = Callable[["Recorder", str], Any]


def _sync_all(writers: list[DumpWriter]) -> None:
    for writer in writers:
        writer.sync()


@dataclass
class _Track:
    producer: "Producer"
    writer: DumpWriter
    last_sr: Any = None


class Recorder:
    """Records one router into ``directory`` (one dump per track) until ``stop``."""

    def __init__(
        self,
        router: "Router",
        directory: Path,
        *,
        on_error: Optional[ErrorCallback] = None,
        flush_interval: float = 0.25,
        sync_interval: float = 2.0,
        min_free_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.router = router
        self.directory = Path(directory)
        self.on_error = on_error
        self.flush_interval = flush_interval
        self.sync_interval = sync_interval
        self.min_free_bytes = min_free_bytes
        self.clock = router.clock
        self.state = "idle"  # idle | recording | stopped | failed
        self.error = ""
        self.bytes = 0
        self.packets = 0
        self.started_at = 0.0
        self._wall = time.time() - self.clock()
        self._tracks: dict[str, _Track] = {}
        self._ignored: set[str] = set()
        self._count = 0
        self._lock_fd: Optional[int] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._syncing: Optional[asyncio.Future[None]] = None

    # ------------------------------------------------------------ public

    @property
    def recording(self) -> bool:
        return self.state == "recording"

    def start(self, meta: Optional[dict[str, Any]] = None, *, lock_fd: Optional[int] = None) -> None:
        """Begin capturing (raises OSError if the directory cannot be written).

        A directory that already holds an interrupted part of this recording (its process died)
        is continued: new dumps are added beside the old ones and the interruption is kept as a
        gap in the metadata. ``lock_fd``: the directory's lock, when the caller took it already
        (to decide under it that the recording is still to be continued).
        """
        if self.state != "idle":
            raise RecorderError("a recorder starts once")
        if self.router.closed:
            unlock_dir(lock_fd)
            raise RecorderError("the room is closed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_fd if lock_fd is not None else lock_dir(self.directory)
        if self._lock_fd is None:
            raise RecorderError("another process records into this directory")
        try:
            self.started_at = time.time()
            fresh = {"room_id": self.router.room_id, "started_at": self.started_at, **(meta or {})}
            write_json_atomic(
                self.directory / META_FILE, continued_meta(self.directory, self.started_at, fresh) or fresh
            )
            # dump names go on from the earlier part's (their order is the tracks' order)
            self._count = len(dumps_in(self.directory))
            sync_dir(self.directory)
        except BaseException:
            unlock_dir(self._lock_fd)
            self._lock_fd = None
            raise
        self.state = "recording"
        self.router.observer.add_rtp_tap(self._on_rtp)
        self.router.observer.on(ev.ROUTER_CLOSED, self._on_router_closed)
        self._task = asyncio.ensure_future(self._flush_loop())
        self.router.set_recording(True)

    async def stop(self) -> Path:
        """Stop capturing; every packet received so far is on disk. Idempotent."""
        if self.state == "recording":
            self.state = "stopped"
            self._detach()
            await self._stop_task()
            try:
                for track in self._tracks.values():
                    self.bytes += len(track.writer.buffer)
                    track.writer.close()
            except OSError as exc:
                self._fail(exc)
            finally:
                self._close_all()
        elif self._task is not None:
            await self._stop_task()
        return self.directory

    def stats(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "tracks": len(self._tracks),
            "packets": self.packets,
            "bytes": self.bytes + sum(len(t.writer.buffer) for t in self._tracks.values()),
            "error": self.error,
        }

    # ------------------------------------------------------------ the tap (hot path)

    def _on_rtp(self, producer_id: str, kind: str, data: bytes) -> None:
        track = self._tracks.get(producer_id)
        if track is None:
            if producer_id in self._ignored or self.state != "recording":
                return
            track = self._open(producer_id)
            if track is None:
                return
        now = self.clock() + self._wall
        track.writer.append_rtp(now, data)
        self.packets += 1
        sr = track.producer.last_sr
        if sr is not track.last_sr:
            track.last_sr = sr
            if sr is not None:
                track.writer.append_sr(sr[2] + self._wall, sr[0], sr[1])

    def _open(self, producer_id: str) -> Optional[_Track]:
        producer = next((p for p in self.router.producers if p.id == producer_id), None)
        if producer is None:
            self._ignored.add(producer_id)
            return None
        peer = self.router.peers.get(producer.peer_id)
        info = peer.info if peer is not None else None
        codecs = []
        for c in producer.codecs:
            codecs.append(
                {
                    "pt": c.payloadType,
                    "name": c.name,
                    "clock_rate": c.clockRate,
                    "channels": c.channels,
                    "apt": c.parameters.get("apt"),
                }
            )
        if producer.red_pt is not None:
            # Opus in RED (RFC 2198): finalizing unwraps it (sfu/recording/depacketize.py)
            codecs.append({"pt": producer.red_pt, "name": "red", "clock_rate": 48000, "channels": 2, "apt": None})
        header = {
            "version": 1,
            "room_id": self.router.room_id,
            "producer_id": producer.id,
            "peer_id": producer.peer_id,
            "user_key": producer.user_key,
            "display_name": info.display_name if info else producer.user_key,
            "role": info.role if info else "",
            "app_data": info.app_data if info else {},
            "kind": producer.kind,
            "source": producer.source,
            "clock_rate": producer.clock_rate,
            "ssrc": producer.ssrc,
            "codecs": codecs,
            "opened_at": self.clock() + self._wall,
        }
        self._count += 1
        path = self.directory / f"{self._count:03d}-{producer.kind}-{producer.id}{SUFFIX}"
        try:
            writer = DumpWriter(path, json.loads(json.dumps(header, default=str)))
        except OSError as exc:
            self._fail(exc)
            return None
        track = _Track(producer, writer)
        self._tracks[producer_id] = track
        if producer.kind == "video":
            producer.request_keyframe()  # the file starts on a keyframe: don't wait for the next one
        return track

    # ------------------------------------------------------------ background

    async def _flush_loop(self) -> None:
        next_sync = self.clock() + self.sync_interval
        while self.state == "recording":
            await asyncio.sleep(self.flush_interval)
            if self.state != "recording":
                return
            try:
                for track in list(self._tracks.values()):
                    self.bytes += track.writer.flush()
                if self.clock() >= next_sync:
                    next_sync = self.clock() + self.sync_interval
                    writers = [track.writer for track in self._tracks.values()]
                    # fsync off the event loop; stop() waits for it before closing the files
                    self._syncing = asyncio.ensure_future(asyncio.to_thread(_sync_all, writers))
                    await asyncio.shield(self._syncing)
                    free = shutil.disk_usage(self.directory).free
                    if free < self.min_free_bytes:
                        raise OSError(errno.ENOSPC, f"disk almost full ({free // (1024 * 1024)} MB free)")
            except OSError as exc:
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        if self.state == "failed":
            return
        was_recording = self.state == "recording"
        self.state = "failed"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            self.error = f"Recording stopped: the disk is full ({exc.strerror or exc})."
        elif isinstance(exc, OSError):
            self.error = f"Recording stopped: could not write the recording ({exc.strerror or exc})."
        else:
            self.error = f"Recording stopped: {exc}"
        logger.error("room %s: %s", self.router.room_id, self.error)
        self._detach()
        self._close_all()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if was_recording and self.on_error is not None:
            try:
                result = self.on_error(self, self.error)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)
            except Exception:  # noqa: BLE001
                logger.exception("recording error callback failed")

    def _detach(self) -> None:
        self.router.observer.remove_rtp_tap(self._on_rtp)
        self.router.observer.off(ev.ROUTER_CLOSED, self._on_router_closed)
        if not self.router.closed:
            self.router.set_recording(False)

    def _close_all(self) -> None:
        for track in self._tracks.values():
            try:
                track.writer.close(sync=False)
            except OSError:
                pass
        unlock_dir(self._lock_fd)
        self._lock_fd = None

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._syncing is not None:
            await asyncio.gather(self._syncing, return_exceptions=True)

    def _on_router_closed(self, _event: Any) -> Any:
        return self.stop()


# ---------------------------------------------------------------- RTP parsing
