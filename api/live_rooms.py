"""The SFU engine inside the application: one Router per live session.

Creates the engine from settings, opens a room's Router on first entry,
wires the engine's events to our services (chat kept, talk time stored, each
participant's joins and leaves kept as attendance intervals) and ends routers
whose sessions are no longer live.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from api.context import Context

from api.metrics import Metrics
from api.models import Session, SessionStatus
from api.services import attendance, rooms
from api.settings import Settings
from sfu import Engine, Router, SfuConfig
from sfu import observer as ev
from sfu.heap import HeapTrimmer

log = logging.getLogger(__name__)

SWEEP_SECONDS = 15.0


def sfu_config(settings: Settings) -> SfuConfig:
    """The engine's network configuration from the PEERLEARN_RTC_* settings."""
    port_range = None
    if settings.rtc_port_min and settings.rtc_port_max:
        port_range = (settings.rtc_port_min, settings.rtc_port_max)
    interfaces = [i.strip() for i in settings.rtc_interfaces.split(",") if i.strip()]
    config = SfuConfig(
        udp_port_range=port_range,
        announced_ip=settings.rtc_public_ip or None,
        announced_port=settings.rtc_announced_port or None,
        audio_red=settings.rtc_audio_red,
        opus_dtx=settings.rtc_opus_dtx,
        interfaces=interfaces,
        allow_private_candidates=allow_private_candidates(settings),
    )
    # `serve --workers N` starts N processes (one media worker per core): each takes its own ports
    return config.for_worker(settings.worker_index, settings.workers)


def allow_private_candidates(settings: Settings) -> bool:
    """PEERLEARN_RTC_PRIVATE_CANDIDATES: allow | deny | auto (allow iff public_url is loopback)."""
    mode = settings.rtc_private_candidates.strip().lower()
    if mode in ("allow", "deny"):
        return mode == "allow"
    if mode != "auto":
        raise ValueError(f"PEERLEARN_RTC_PRIVATE_CANDIDATES must be allow, deny or auto, not {mode!r}")
    host = urlsplit(settings.public_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


RoomListener = Callable[[Router], None]


class LiveRooms:
    """Routers of this process by session id, with the application's listeners attached."""

    def __init__(self, ctx: Context, engine: Engine) -> None:
        self.ctx = ctx
        self.engine = engine
        self._sweeper: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._exited = asyncio.Event()
        # Join/leave writes in the order the engine reported them (a reconnect is a
        # leave then a join of the same user; swapped, the new interval would close).
        self._attendance_lock = asyncio.Lock()
        # Called with every room this process opens (e.g. the recording manager's attach).
        self._listeners: list[RoomListener] = []
        # freed per-participant heap back to the kernel after departures (sfu/heap.py)
        self.heap = HeapTrimmer()

    def add_listener(self, listener: RoomListener) -> None:
        """Call ``listener(router)`` for each room opened from now on."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RoomListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def router_for(self, session_id: int, capacity: int) -> Router:
        existing = self.engine.get_router(str(session_id))
        if existing is not None and not existing.closed:
            return existing
        router = self.engine.create_router(str(session_id), max_peers=capacity + 1, app_data={"session_id": session_id})
        router.observer.on(ev.CHAT_MESSAGE, self._on_chat)
        router.observer.on(ev.TALK_TIME, self._on_talk_time)
        router.observer.on(ev.QUALITY_SUMMARY, self._on_quality_summary)
        # attendance starts when the participant's media connection is up, not when their
        # signaling is admitted: a page that never got ICE/DTLS through never was in class
        router.observer.on(ev.PEER_CONNECTED, self._on_joined)
        router.observer.on(ev.PARTICIPANT_LEFT, self._on_left)
        for listener in list(self._listeners):
            listener(router)
        return router

    def get(self, session_id: int) -> Router | None:
        router = self.engine.get_router(str(session_id))
        return router if router is not None and not router.closed else None

    async def end(self, session_id: int) -> None:
        router = self.get(session_id)
        if router is not None:
            await router.end()

    async def _on_chat(self, event: ev.ChatEvent) -> None:
        at = datetime.fromtimestamp(event.at, timezone.utc)
        try:
            await rooms.save_chat(self.ctx, int(event.room_id), int(event.user_key), event.text, at)
        except Exception:  # noqa: BLE001 - chat storage must never break the room
            log.exception("could not store chat of room %s", event.room_id)

    async def _on_talk_time(self, event: ev.TalkTimeEvent) -> None:
        seconds = {int(k): v for k, v in event.seconds.items() if k.isdigit()}
        if seconds:
            try:
                await rooms.save_talk_time(self.ctx, int(event.room_id), seconds)
            except Exception:  # noqa: BLE001
                log.exception("could not store talk time of room %s", event.room_id)

    async def _on_quality_summary(self, event: ev.QualitySummaryEvent) -> None:
        seconds = {int(k): v for k, v in event.seconds.items() if k.isdigit()}
        if seconds:
            try:
                await rooms.save_connection_quality(self.ctx, int(event.room_id), seconds)
            except Exception:  # noqa: BLE001 - like talk time: never break the room
                log.exception("could not store connection quality of room %s", event.room_id)

    async def _on_joined(self, event: ev.ParticipantEvent) -> None:
        at = attendance.utcnow()  # taken before waiting: the engine's order, not the lock's
        async with self._attendance_lock:
            try:
                await attendance.record_join(
                    self.ctx, int(event.room_id), int(event.user_key), event.role, event.peer_id, at
                )
            except Exception:  # storage trouble must never break the room
                log.exception("could not store the join of %s in room %s", event.user_key, event.room_id)

    async def _on_left(self, event: ev.ParticipantEvent) -> None:
        at = attendance.utcnow()
        async with self._attendance_lock:
            try:
                await attendance.record_leave(self.ctx, int(event.room_id), int(event.user_key), at)
            except Exception:  # as above
                log.exception("could not store the leave of %s in room %s", event.user_key, event.room_id)
        self.heap.soon()

    # The sweeper: rooms close when their session stops being live (ended by the
    # scheduler, cancelled by an admin) even if nobody pressed "End".
    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="live-rooms-sweeper")

    async def stop(self) -> None:
        """Stop sweeping and close every room (idempotent)."""
        if self._sweeper is not None:
            await self._started.wait()  # cancelled before its first step, it would never exit
            self._sweeper.cancel()
            await self._exited.wait()
        self.heap.cancel()
        await self.engine.close()

    async def _sweep_loop(self) -> None:
        self._started.set()
        try:
            while True:
                await asyncio.sleep(SWEEP_SECONDS)
                try:
                    await self.sweep()
                except Exception:  # noqa: BLE001
                    log.exception("room sweep failed")
        except asyncio.CancelledError:
            pass
        finally:
            self._exited.set()

    async def sweep(self) -> None:
        open_ids = [int(r.room_id) for r in self.engine.routers if not r.closed]
        if not open_ids:
            return
        async with self.ctx.db.read() as s:
            live = set(
                (
                    await s.scalars(
                        select(Session.id).where(Session.id.in_(open_ids), Session.status == SessionStatus.live)
                    )
                ).all()
            )
        for sid in open_ids:
            if sid not in live:
                await self.end(sid)


class _SfuCollector:
    """Prometheus view of the engine's counters (read at scrape time; the hot path stays untouched)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.engine.stats()
        for name in ("rooms", "peers", "producers", "consumers"):
            yield GaugeMetricFamily(
                f"peerlearn_sfu_{name}", f"SFU {name} open in this process", value=getattr(stats, name)
            )
        yield CounterMetricFamily(
            "peerlearn_sfu_packets_received",
            "RTP packets received from publishers (open rooms)",
            value=stats.packets_received,
        )
        yield CounterMetricFamily(
            "peerlearn_sfu_packets_forwarded",
            "RTP packets forwarded to subscribers (egress, open rooms)",
            value=stats.packets_forwarded,
        )
        yield CounterMetricFamily(
            "peerlearn_sfu_packets_retransmitted",
            "RTP packets resent for NACKs (open rooms)",
            value=stats.retransmitted,
        )


def register_sfu_metrics(metrics: Metrics, engine: Engine) -> None:
    """Expose the engine's counters on ``metrics`` (read at scrape time)."""
    metrics.registry.register(_SfuCollector(engine))  # type: ignore[arg-type]
