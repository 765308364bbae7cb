"""Router: one live room; its peers, producers, consumers and events."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional

from . import observer as ev
from . import room_messages as msg
from ..rtp.codecs import is_rtx
from ..config import SfuConfig
from .consumer import Consumer
from .dynacast import Dynacast
from ..errors import SignalingError
from ..transport.ice import IceSockets
from ..rtp.layers import RecordingFeed
from .observer import Observer
from .participant import ParticipantInfo
from .playout import PlayoutDelays
from .peer import Peer
from .producer import Producer
from .quality import LinkSample, QualityMonitor
from .speaker import SpeakerDetector

logger = logging.getLogger(__name__)

#: connection quality is sampled every this many speaker ticks (0.5 s each)
QUALITY_TICKS = 4
#: an unpaused track that sent nothing for this long: its sender's link is lost
SILENT_SECONDS = 5.0


@dataclass
class RouterStats:
    peers: int
    producers: int
    consumers: int
    packets_received: int
    packets_forwarded: int
    retransmitted: int


class Router:
    """A room's forwarding table. Create through ``Engine.create_router``."""

    def __init__(
        self,
        *,
        room_id: str,
        max_peers: int,
        app_data: dict[str, Any],
        config: SfuConfig,
        ice: Optional[IceSockets] = None,
        on_closed: Optional[Callable[[Router], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_peers < 1:
            raise TypeError("max_peers must be >= 1")
        self.room_id = room_id
        self.max_peers = max_peers
        self.app_data = app_data
        self.config = config
        self.clock = clock
        self.observer = Observer()
        self.ice = ice if ice is not None else IceSockets(config)
        self.peers: dict[str, Peer] = {}
        self.recording = False
        self.closed = False
        self._peer_ids: dict[str, str] = {}
        self._orphans: dict[tuple[str, str], list[Consumer]] = {}
        #: producer id -> its consumers (consumer id -> consumer): the fan-out the router owns
        self._consumers_of: dict[str, dict[str, Consumer]] = {}
        #: producer id -> what the recorder gets of a simulcast camera (its best layer)
        self._feeds: dict[str, RecordingFeed] = {}
        self.quality = QualityMonitor()
        #: which simulcast layers each publisher is asked to send (nobody needs the rest)
        self.dynacast = Dynacast()
        self.playout = PlayoutDelays()
        self._link_counts: dict[int, tuple[int, int]] = {}  # id(forwarder) -> (expected, received)
        self._ticks = 0
        self._on_closed = on_closed
        self._join_lock = asyncio.Lock()
        self.speaker = SpeakerDetector(on_change=self._on_active_speaker)
        self._speaker_task = asyncio.ensure_future(self._run_speaker())

    # ------------------------------------------------------------ properties

    @property
    def producers(self) -> list[Producer]:
        return [p for peer in self.peers.values() for p in peer.producers.values()]

    def participants(self) -> list[dict[str, Any]]:
        return [peer.describe() for peer in self.peers.values()]

    def stats(self) -> RouterStats:
        producers = self.producers
        consumers = [c for peer in self.peers.values() for c in peer.consumers.values()]
        return RouterStats(
            peers=len(self.peers),
            producers=len(producers),
            consumers=len(consumers),
            packets_received=sum(p.forwarder.packets for p in producers),
            packets_forwarded=sum(c.rewriter.packets for c in consumers),
            retransmitted=sum(c.rewriter.retransmitted for c in consumers),
        )

    # ------------------------------------------------------------ public

    async def join(self, info: ParticipantInfo, notify: msg.Notify) -> Peer:
        """Admit a participant; a second join with the same user key replaces the first."""
        async with self._join_lock:
            if self.closed:
                raise SignalingError("room_closed", "this room is closed")
            peer_id = self._peer_ids.get(info.user_key)
            old = self.peers.get(peer_id) if peer_id else None
            if old is None and len(self.peers) >= self.max_peers:
                raise SignalingError("room_full", "this room is full")
            if peer_id is None:
                peer_id = "pe-" + secrets.token_hex(6)
                self._peer_ids[info.user_key] = peer_id
            peer = Peer(
                peer_id=peer_id,
                info=info,
                config=self.config,
                notify=notify,
                clock=self.clock,
                ice=self.ice,
                on_offer=self._announce_mids,
                on_failed=self._on_peer_failed,
                on_producer_configured=self._refresh_consumers,
                on_connected=self._on_peer_connected,
            )
            if old is not None:
                await self._replace(old)
            self.peers[peer_id] = peer
            for other in self.peers.values():
                if other is peer:
                    continue
                for producer in other.producers.values():
                    self._subscribe(peer, producer)
                if old is None:
                    other.notify(msg.ParticipantJoined(peer_id, info.public_user()))
            # the newcomer learns everyone's connection quality now, not at its next change
            for other_id, level in self.quality.levels.items():
                if other_id != peer_id and other_id in self.peers:
                    peer.notify(msg.Quality(other_id, level, 0.0, None))
            # and how long to hold each lossy publisher's video (sfu/room/playout.py)
            for other in self.peers.values():
                for producer in other.producers.values() if other is not peer else ():
                    delay = self.playout.announced.get(producer.id)
                    if delay:
                        peer.notify(msg.PlayoutDelay(other.id, producer.source, delay))
            self.observer.emit(ev.PARTICIPANT_JOINED, self._participant_event(peer, ""))
            return peer

    async def publish(self, peer: Peer, sdp: str, sources: dict[str, str]) -> str:
        """A peer's offer: answer it, then route its new/closed tracks to everyone."""
        first = not peer.first_offer_done.is_set()
        answer, added, removed = await peer.handle_offer(sdp, sources)
        if self.peers.get(peer.id) is not peer:
            return answer
        for producer in added:
            if producer.simulcast:
                self._feeds[producer.id] = feed = RecordingFeed(
                    producer_id=producer.id,
                    kind=producer.kind,
                    layers=len(producer.layers),
                    clock_rate=producer.clock_rate,
                    ssrc=secrets.randbits(32) or 1,
                    taps=self.observer.rtp_taps,
                    request_keyframe=producer.request_keyframe,
                )
                producer.attach(feed.switch)
            else:
                producer.forwarder.taps = self.observer.rtp_taps
            orphans = self._orphans.pop((peer.user_key, producer.source), [])
            rebound = set()
            for consumer in orphans:
                subscriber = self.peers.get(consumer.subscriber_id)
                if subscriber is not None and not consumer.closed and consumer.kind == producer.kind:
                    consumer.bind(producer)
                    self._consumers_of.setdefault(producer.id, {})[consumer.id] = consumer
                    rebound.add(subscriber.id)
                elif subscriber is not None:
                    subscriber.remove_consumer(consumer)
            for other in self.peers.values():
                if other is not peer and other.id not in rebound:
                    self._subscribe(other, producer)
            self.observer.emit(ev.TRACK_PUBLISHED, self._track_event(producer))
        for producer in removed:
            self._close_consumers_of(producer)
            self.observer.emit(ev.TRACK_CLOSED, self._track_event(producer))
        if first and not peer.first_offer_done.is_set():
            # sources the reconnected publisher no longer sends
            for key in [k for k in self._orphans if k[0] == peer.user_key]:
                for consumer in self._orphans.pop(key):
                    subscriber = self.peers.get(consumer.subscriber_id)
                    if subscriber is not None:
                        subscriber.remove_consumer(consumer)
        if added or removed:
            self._announce_tracks(peer)
        return answer

    def set_muted(self, peer: Peer, kind: str, muted: bool) -> None:
        changed = peer.set_muted(kind, muted)
        for producer in changed:
            self.observer.emit(ev.TRACK_MUTED, self._track_event(producer))
        if changed:
            self._announce_tracks(peer)

    def set_video_size(self, peer: Peer, track_id: str, height: Optional[int]) -> bool:
        """``peer`` shows ``track_id`` at ``height`` device pixels: its layer follows, and the
        publisher resumes a paused layer at once if this tile needs it."""
        if not peer.set_video_size(track_id, height):
            return False
        producer = next((p for p in self.producers if p.id == track_id), None)
        if producer is not None:
            self._update_dynacast(producer)
        return True

    def chat(self, peer: Peer, text: str) -> None:
        at = time.time()
        self.broadcast(msg.Chat(peer.id, peer.info.public_user(), text, at))
        self.observer.emit(
            ev.CHAT_MESSAGE,
            ev.ChatEvent(self.room_id, peer.id, peer.user_key, peer.info.display_name, text, at),
        )

    def set_ready(self, peer: Peer, ready: bool) -> None:
        self.observer.emit(ev.READY_CHANGED, ev.ReadyEvent(self.room_id, peer.id, peer.user_key, peer.info.role, ready))

    def set_recording(self, on: bool) -> None:
        """Tell everyone the recording state (the recorder itself taps ``observer``)."""
        if self.recording == on:
            return
        self.recording = on
        self.broadcast(msg.Recording(on))
        self.observer.emit(ev.RECORDING_STATE, ev.RecordingEvent(self.room_id, on))

    def broadcast(self, message: msg.RoomMessage, *, exclude: Optional[Peer] = None) -> None:
        for peer in list(self.peers.values()):
            if peer is not exclude:
                peer.notify(message)

    async def leave(self, peer: Peer, reason: str = "left") -> None:
        """Remove a peer (idempotent); its tracks leave every other peer."""
        if self.peers.get(peer.id) is not peer:
            await peer.close(reason)
            return
        del self.peers[peer.id]
        for producer in list(peer.producers.values()):
            self._close_consumers_of(producer)
            self.observer.emit(ev.TRACK_CLOSED, self._track_event(producer))
        for key in [k for k in self._orphans if k[0] == peer.user_key]:
            for consumer in self._orphans.pop(key):
                subscriber = self.peers.get(consumer.subscriber_id)
                if subscriber is not None:
                    subscriber.remove_consumer(consumer)
        self._drop_subscriptions(peer)
        self._take_levels([peer])  # the talk time of its last half second
        self.speaker.forget(peer.user_key)
        self.quality.forget(peer.id, peer.user_key, self.clock())
        await peer.close(reason)
        if reason != "ended":
            self.broadcast(msg.ParticipantLeft(peer.id, peer.info.public_user()))
        self.observer.emit(ev.PARTICIPANT_LEFT, self._participant_event(peer, reason))

    async def end(self) -> None:
        """The session is over: tell everyone ``session-ended`` and close."""
        self.broadcast(msg.SessionEnded())
        await self.close("ended")

    async def close(self, reason: str = "closed") -> None:
        """Idempotent: close every peer, report talk time, emit router-closed."""
        if self.closed:
            return
        self.closed = True
        self._speaker_task.cancel()
        await asyncio.gather(self._speaker_task, return_exceptions=True)
        for peer in list(self.peers.values()):
            await self.leave(peer, "ended" if reason == "ended" else "closed")
        self.observer.emit(ev.TALK_TIME, ev.TalkTimeEvent(self.room_id, self.speaker.talk_time()))
        self.observer.emit(ev.QUALITY_SUMMARY, ev.QualitySummaryEvent(self.room_id, self.quality.seconds))
        self.observer.emit(ev.ROUTER_CLOSED, ev.RouterClosedEvent(self.room_id, reason))
        await self.observer.drain()
        if self._on_closed is not None:
            self._on_closed(self)

    # ------------------------------------------------------------ hooks

    def _announce_mids(self, subscriber: Peer) -> None:
        """After a server offer: tell ``subscriber`` which mid carries which track."""
        for peer in self.peers.values():
            if peer is not subscriber and peer.producers:
                subscriber.notify(self._tracks_message(peer, subscriber))

    # ------------------------------------------------------------ private

    def _tracks_message(self, publisher: Peer, subscriber: Peer) -> msg.Tracks:
        mids = subscriber.track_mids(publisher.id)
        tracks = []
        for track in publisher.tracks():
            track = dict(track)
            track["mid"] = mids.get(str(track["id"]))
            tracks.append(track)
        return msg.Tracks(publisher.id, tracks)

    def _announce_tracks(self, publisher: Peer) -> None:
        for subscriber in list(self.peers.values()):
            subscriber.notify(self._tracks_message(publisher, subscriber))

    async def _replace(self, old: Peer) -> None:
        # others keep their consumers of the old producers, waiting for the
        # same user's new producers (no renegotiation for them)
        del self.peers[old.id]
        for producer in list(old.producers.values()):
            for consumer in list(self._consumers_of.pop(producer.id, {}).values()):
                consumer.unbind()
                self._orphans.setdefault((old.user_key, producer.source), []).append(consumer)
            self.observer.emit(ev.TRACK_CLOSED, self._track_event(producer))
        self._drop_subscriptions(old)
        old.notify(msg.PeerError("replaced", "you joined from another connection"))
        await old.close("replaced")
        self.observer.emit(ev.PARTICIPANT_LEFT, self._participant_event(old, "replaced"))

    def _drop_subscriptions(self, peer: Peer) -> None:
        for consumer in list(peer.consumers.values()):
            self._forget(consumer)
            consumer.close()
        for consumers in self._orphans.values():
            consumers[:] = [c for c in consumers if c.subscriber_id != peer.id]

    def _subscribe(self, subscriber: Peer, producer: Producer) -> None:
        if subscriber.consumer_for(producer) is not None:
            return  # already (a join and a publish that raced each other both get here)
        consumer = subscriber.add_consumer(producer)
        self._consumers_of.setdefault(producer.id, {})[consumer.id] = consumer
        self._update_dynacast(producer)  # a newcomer needs what its tile will call for: resume now

    def _update_dynacast(self, producer: Producer) -> None:
        """Tell ``producer``'s publisher which of its simulcast layers to send, if that changed."""
        now = self.clock()
        consumers = self._consumers_of.get(producer.id, {}).values()
        change = self.dynacast.update(producer, consumers, recording=bool(self.observer.rtp_taps), now=now)
        if change is None:
            return
        publisher = self.peers.get(producer.peer_id)
        if publisher is None or publisher.producers.get(producer.id) is not producer:
            return
        publisher.notify(msg.PublishLayers(producer.id, producer.mid, producer.source, change.active))

    def _tick_dynacast(self) -> None:
        producers = [p for p in self.producers if p.simulcast]
        self.dynacast.forget({p.id for p in producers})
        for producer in producers:
            self._update_dynacast(producer)
            # Every tick, not only at each subscriber's RTCP round (0.5-1.5 s): a resumed layer
            # is taken as soon as the publisher sends it, and a layer the publisher starves is
            # left before its picture stalls (each waits for a keyframe besides).
            for consumer in list(self._consumers_of.get(producer.id, {}).values()):
                consumer.update_layer()

    def _forget(self, consumer: Consumer) -> None:
        if consumer.producer is not None:
            consumers = self._consumers_of.get(consumer.producer.id)
            if consumers is not None:
                consumers.pop(consumer.id, None)
                if not consumers:
                    del self._consumers_of[consumer.producer.id]

    def _refresh_consumers(self, producer: Producer) -> None:
        for consumer in list(self._consumers_of.get(producer.id, {}).values()):
            consumer.refresh()

    def _update_playout(self) -> None:
        """Subscribers hold a publisher's video while its uplink needs repairs (playout.py)."""
        now = self.clock()
        video = [p for p in self.producers if p.kind == "video"]
        self.playout.forget(p.id for p in video)
        for producer in video:
            repaired, seconds = producer.repairs()
            delay = self.playout.update(producer.id, repaired, seconds, now)
            if delay is not None:
                publisher = self.peers.get(producer.peer_id)
                self.broadcast(msg.PlayoutDelay(producer.peer_id, producer.source, delay), exclude=publisher)

    def _sample_quality(self) -> None:
        now = self.clock()
        counts: dict[int, tuple[int, int]] = {}
        for peer in list(self.peers.values()):
            sample = self._link_sample(peer, now, counts)
            level = self.quality.update(peer.id, peer.user_key, sample, now)
            if level is not None:
                self.broadcast(msg.Quality(peer.id, level, sample.loss, sample.rtt_ms))
                self.observer.emit(
                    ev.QUALITY_CHANGED,
                    ev.QualityEvent(self.room_id, peer.id, peer.user_key, level, sample.loss, sample.rtt_ms),
                )
        self._link_counts = counts  # producers that closed drop out

    def _link_sample(self, peer: Peer, now: float, counts: dict[int, tuple[int, int]]) -> LinkSample:
        """``peer``'s uplink (gaps in what it sends) and downlink (its receiver reports)."""
        expected = received = 0
        arriving = True
        for producer in peer.producers.values():
            newest = 0.0
            for layer in producer.layers:
                if layer.last_seq < 0:
                    continue
                total = (layer.highest_sequence - layer.base_seq + 1, layer.media_packets)
                before = self._link_counts.get(id(layer), total)
                counts[id(layer)] = total
                expected += max(total[0] - before[0], 0)
                received += max(total[1] - before[1], 0)
                newest = max(newest, layer.last_arrival)
            if not producer.paused and newest and now - newest > SILENT_SECONDS:
                arriving = False
        uplink = max(0.0, 1 - received / expected) if expected else 0.0
        consumers = [c for c in peer.consumers.values() if c.ready]
        downlink = max((c.loss for c in consumers), default=0.0)
        rtts = [c.rtt_ms for c in consumers if c.rtt_ms is not None]
        jitters = [c.jitter_ms for c in consumers if c.jitter_ms is not None]
        return LinkSample(
            loss=max(uplink, downlink),
            rtt_ms=max(rtts) if rtts else None,
            jitter_ms=max(jitters) if jitters else None,
            connected=peer.connected and arriving,
        )

    def _update_feeds(self) -> None:
        producers = self.producers
        for gone in set(self._feeds) - {p.id for p in producers}:
            del self._feeds[gone]  # its producer closed (left, replaced, unpublished)
        for producer in producers:
            feed = self._feeds.get(producer.id)
            if feed is not None:
                pts = [c.payloadType for c in producer.codecs if not is_rtx(c) and c.payloadType is not None]
                feed.update(producer.layer_states(), pts)

    def _on_peer_connected(self, peer: Peer) -> None:
        if self.peers.get(peer.id) is not peer:
            return
        self._reconcile(peer)
        self.observer.emit(ev.PEER_CONNECTED, self._participant_event(peer, ""))

    def _reconcile(self, peer: Peer) -> None:
        """``peer``'s media just connected: make sure it receives every track in the room and
        knows each one. Two participants who rejoin at the same moment (both back from the same
        outage) race each other: one's join awaits the close of its old connection while the
        other publishes, and the newcomer missed that publication (a clean-clone CI run: the
        mentor's page knew the learner with no tracks at all, 30 s after both had reconnected)."""
        for other in list(self.peers.values()):
            if other is peer:
                continue
            for producer in list(other.producers.values()):
                waiting = self._orphans.get((other.user_key, producer.source), [])
                if not any(c.subscriber_id == peer.id for c in waiting):
                    self._subscribe(peer, producer)
            peer.notify(self._tracks_message(other, peer))

    def _on_peer_failed(self, peer: Peer) -> None:
        asyncio.ensure_future(self.leave(peer, "disconnected"))

    def _close_consumers_of(self, producer: Producer) -> None:
        for consumer in list(self._consumers_of.pop(producer.id, {}).values()):
            subscriber = self.peers.get(consumer.subscriber_id)
            if subscriber is not None:
                subscriber.remove_consumer(consumer)
            else:
                consumer.close()

    def _take_levels(self, peers: Iterable[Peer]) -> None:
        """Hand each audio producer's voice activity since the last call to the speaker detector
        (summed in the forwarder, so an audio packet costs no Python call)."""
        speaker = self.speaker
        for peer in peers:
            for producer in peer.producers.values():
                if producer.kind == "audio":
                    voiced, total = producer.forwarder.take_levels()
                    speaker.add_activity(producer.user_key, producer.peer_id, voiced, total)

    def _on_active_speaker(self, user_key: Optional[str], peer_id: Optional[str]) -> None:
        self.broadcast(msg.ActiveSpeaker(peer_id))
        self.observer.emit(ev.ACTIVE_SPEAKER, ev.ActiveSpeakerEvent(self.room_id, peer_id, user_key))

    async def _run_speaker(self) -> None:
        failures = 0
        while True:
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                return
            try:
                self._tick()
            except Exception:
                # one bad tick must not end the room's speaker, dynacast and quality ticks for
                # good; logged with its traceback the first time, then counted
                failures += 1
                if failures == 1 or failures % 120 == 0:
                    logger.exception("router %s: speaker tick failed (%d so far)", self.room_id, failures)

    def _tick(self) -> None:
        """Every 0.5 s: voice activity, active speaker, feeds, dynacast, and now and then quality."""
        self._take_levels(self.peers.values())
        self.speaker.evaluate()
        self._update_feeds()
        self._tick_dynacast()
        self._update_playout()
        self._ticks += 1
        if self._ticks % QUALITY_TICKS == 0:
            self._sample_quality()

    def _participant_event(self, peer: Peer, reason: str) -> ev.ParticipantEvent:
        info = peer.info
        return ev.ParticipantEvent(
            self.room_id, peer.id, info.user_key, info.display_name, info.role, info.app_data, reason
        )

    def _track_event(self, producer: Producer) -> ev.TrackEvent:
        return ev.TrackEvent(
            self.room_id,
            producer.peer_id,
            producer.user_key,
            producer.id,
            producer.kind,
            producer.source,
            producer.paused,
        )
