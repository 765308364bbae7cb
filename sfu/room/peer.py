"""Peer: one participant's RTCPeerConnection, terminated by the server.

The client offers the tracks it sends (producers); the server answers. The
server offers the tracks the client receives (consumers) whenever they
change, and the client answers. The server is the "impolite" side of
perfect negotiation: a client offer that collides with a pending server
offer is refused with ``glare`` (the client answers ours, then re-offers).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
from collections.abc import Callable
from typing import Any, Optional

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters

from ..transport import aiortc_bridge as bridge
from ..rtp import opus_fec, rtcp, simulcast, twcc
from ..rtp.codecs import capability_for, primary_codec
from ..config import SfuConfig
from .consumer import Consumer, ntp_now
from .downlink import SubscriberDownlink
from ..errors import InvalidStateError, SignalingError
from ..rtp.extmap import align_extmap, parse_extmap
from ..rtp.payload_types import keep_payload_types
from ..transport.ice import IceSockets
from ..transport.ice_restart import IceRestart
from ..transport.media_transport import MediaTransport
from .participant import ParticipantInfo
from .mid_routing import route_by_mid
from .producer import Producer
from .red_negotiation import RedNegotiation
from .room_messages import Notify, Offer, PeerError

logger = logging.getLogger(__name__)

_CNAME = re.compile(r"^a=ssrc:\d+ cname:(\S+)", re.M)
_DEFAULT_SOURCE = {"audio": "mic", "video": "camera"}
_SOURCE_KIND = {"mic": "audio", "camera": "video", "screen": "video"}
#: the periodic reports to one peer travel in compounds of at most this many bytes: with SRTCP's
#: trailer and the UDP/IP headers a datagram stays under the 1,200 bytes WebRTC keeps media under
RTCP_COMPOUND_BYTES = 1100


class Peer:
    """A participant's connection: its producers, its consumers, negotiation.

    A peer never holds its room: what the room must hear of it arrives through the
    callbacks it is given (as mediasoup's children get narrow lambdas, never the parent).
    """

    def __init__(
        self,
        *,
        peer_id: str,
        info: ParticipantInfo,
        config: SfuConfig,
        notify: Notify,
        clock: Callable[[], float],
        ice: IceSockets,
        on_offer: Callable[[Peer], None],
        on_failed: Callable[[Peer], None],
        on_producer_configured: Callable[[Producer], None],
        on_connected: Callable[[Peer], None] = lambda _peer: None,
    ) -> None:
        self.id = peer_id
        self.info = info
        self.config = config
        self._ice = ice
        self._on_offer = on_offer
        self._on_failed = on_failed
        self._on_producer_configured = on_producer_configured
        self._on_connected = on_connected
        self.notify = notify
        self.clock = clock
        self.pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[RTCIceServer(**server) for server in config.ice_servers],
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.closed = False
        self.closed_event = asyncio.Event()
        self.close_reason = ""
        self.first_offer_done = asyncio.Event()
        self._producer_by_mid: dict[str, Producer] = {}
        # header extension ids the client chose in its first offer (uri -> id)
        self._extmap: dict[str, int] = {}
        # mid -> the simulcast the client sends there (our descriptions must keep accepting it)
        self._simulcast: dict[str, simulcast.SimulcastOffer] = {}
        # mid -> transport-cc extension id the client offered there; its arrivals' feedback
        self._twcc_offer: dict[str, int] = {}
        self._twcc: Optional[twcc.TwccResponder] = None
        #: transport-wide congestion control toward this participant as a subscriber
        self.downlink = SubscriberDownlink(lambda: self.consumers.values(), clock)
        self._red = RedNegotiation(config.audio_red)  # Opus RED both ways (aiortc drops it)
        self._client_dtx = False  # the client's offer asks for Opus DTX (usedtx=1)
        self._offer_sdp = ""
        self._receive_params: dict[str, RTCRtpReceiveParameters] = {}
        self._consumer_by_transceiver: dict[RTCRtpTransceiver, Consumer] = {}
        self._consumer_by_ssrc: dict[int, Consumer] = {}
        self._pending: list[Consumer] = []
        self._releasing: list[tuple[RTCRtpTransceiver, Consumer]] = []
        self._free: list[tuple[RTCRtpTransceiver, Consumer]] = []
        #: the peer connection's media transport: routes, SRTP, egress (bound at the first negotiation)
        self.transport = MediaTransport(on_rtcp=self._on_rtcp, on_unknown_rtp=self._route_unknown)
        #: the page's ICE restarts on this connection (a new offer with new ICE credentials)
        self.ice_restart = IceRestart(self.pc, on_new_path=self.transport.repath, on_ufrag=ice.rekey)
        self._cname = "sfu"
        self._lock = asyncio.Lock()
        self._negotiation_needed = asyncio.Event()
        self._answer_received = asyncio.Event()
        self._offer_in_flight = False
        self.rtp_unknown = 0
        self._tasks_started = asyncio.Event()
        self._negotiation_task = asyncio.ensure_future(self._run_negotiation())
        self._rtcp_task = asyncio.ensure_future(self._run_rtcp())
        self.pc.on("connectionstatechange", self._on_connection_state)

    # ------------------------------------------------------------ public

    @property
    def user_key(self) -> str:
        return self.info.user_key

    def describe(self) -> dict[str, Any]:
        return {"peer_id": self.id, "user": self.info.public_user(), "tracks": self.tracks()}

    def tracks(self) -> list[dict[str, Any]]:
        return [p.describe() for p in self.producers.values()]

    def consumer_for(self, producer: Producer) -> Optional[Consumer]:
        for consumer in self.consumers.values():
            if consumer.producer is producer:
                return consumer
        return None

    def track_mids(self, publisher_id: str) -> dict[str, Optional[str]]:
        """producer id -> the mid it arrives on at this peer."""
        return {
            c.producer.id: c.mid
            for c in self.consumers.values()
            if c.producer is not None and c.publisher_peer_id == publisher_id
        }

    async def handle_offer(self, sdp: str, sources: dict[str, str]) -> tuple[str, list[Producer], list[Producer]]:
        """Apply a client offer; returns (answer sdp, producers added, producers closed)."""
        self._assert_open()
        if self._offer_in_flight or self.pc.signalingState != "stable":
            raise SignalingError("glare", "answer the pending server offer, then offer again")
        async with self._lock:
            if self._offer_in_flight or self.pc.signalingState != "stable":
                raise SignalingError("glare", "answer the pending server offer, then offer again")
            if not self._extmap:
                self._extmap = parse_extmap(sdp)
            self._simulcast.update(simulcast.parse_offer(sdp))
            self._twcc_offer.update(twcc.parse_offer(sdp))
            self.downlink.learn(sdp, first_offer=self._extmap)
            self.ice_restart.restart_if_offered(sdp)
            self._red.on_offer(sdp, self.consumers.values())
            asked_dtx = opus_fec.asks_dtx(sdp)
            if asked_dtx is not None:
                self._client_dtx = asked_dtx
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:  # aiortc raises many types on bad SDP
                raise SignalingError("invalid_sdp", f"offer refused: {type(exc).__name__}") from None
            self._adopt()
            self._accept_client_sending()
            try:
                answer = await self.pc.createAnswer()
                await self.pc.setLocalDescription(answer)
            except Exception as exc:
                logger.warning("peer %s: cannot answer: %r", self.id, exc)
                raise SignalingError("negotiation_failed", f"cannot answer: {type(exc).__name__}") from None
            self._adopt()
            match = _CNAME.search(self.pc.localDescription.sdp)
            if match:
                self._cname = match.group(1)
            added, removed = self._sync_producers(sources)
            if self._twcc is None and self._twcc_offer:
                ext, ssrc = next(iter(self._twcc_offer.values())), bridge.rtcp_ssrc(self.pc.getTransceivers()[0])
                self._twcc = twcc.TwccResponder(ext, sender_ssrc=ssrc, send=self._send_rtcp, clock=self._ice.stamp)
                self.transport.arrivals = self._twcc.log
            answer_sdp = self._describe(self.pc.localDescription.sdp, answer=True)
        return answer_sdp, added, removed

    def answered(self) -> None:
        """The answer to the client's offer is queued: server offers may follow it."""
        self.first_offer_done.set()

    async def handle_answer(self, sdp: str) -> None:
        self._assert_open()
        if not self._offer_in_flight or self.pc.signalingState != "have-local-offer":
            raise SignalingError("unexpected_answer", "no server offer is pending")
        async with self._lock:
            self.downlink.learn(sdp, first_offer=self._extmap)  # before the senders start
            self._red.on_answer(sdp, self.consumers.values())
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as exc:
                raise SignalingError("invalid_sdp", f"answer refused: {type(exc).__name__}") from None
            self._adopt()
        self._answer_received.set()

    def add_consumer(self, producer: Producer) -> Consumer:
        """Start receiving ``producer`` (negotiated on the next server offer)."""
        self._assert_open()
        consumer = Consumer(
            subscriber_id=self.id,
            producer=producer,
            clock=self.clock,
            history_size=self.config.nack_history,
        )
        self.consumers[consumer.id] = consumer
        self._pending.append(consumer)
        self._negotiation_needed.set()
        return consumer

    def remove_consumer(self, consumer: Consumer) -> None:
        consumer.close()
        self.consumers.pop(consumer.id, None)
        if consumer in self._pending:
            self._pending.remove(consumer)
        transceiver = consumer.transceiver
        if transceiver is not None and not self.closed:
            self._consumer_by_transceiver.pop(transceiver, None)
            self._consumer_by_ssrc.pop(consumer.ssrc, None)
            self._consumer_by_ssrc.pop(consumer.rtx_ssrc, None)
            if transceiver.mid in self._producer_by_mid:
                transceiver.direction = "recvonly"  # the client still sends on it
            else:
                transceiver.direction = "inactive"
                self._releasing.append((transceiver, consumer))
            self._negotiation_needed.set()

    def set_video_size(self, track_id: str, height: Optional[int]) -> bool:
        """The subscriber shows ``track_id`` at ``height`` pixels (None: no limit, 0: hidden):
        a simulcast track is then sent in the layer that fits it."""
        for consumer in self.consumers.values():
            if consumer.producer is not None and consumer.producer.id == track_id:
                consumer.max_height = height
                consumer.update_layer()
                return True
        return False

    def producer_by_source(self, source: str) -> Optional[Producer]:
        return next((p for p in self.producers.values() if p.source == source), None)

    def set_muted(self, kind: str, muted: bool) -> list[Producer]:
        """Pause/resume the producers of ``kind`` (audio|video) or source (camera|mic|screen)."""
        changed = []
        for producer in self.producers.values():
            if producer.kind == kind or producer.source == kind:
                if muted and not producer.paused:
                    producer.pause()
                    changed.append(producer)
                elif not muted and producer.paused:
                    producer.resume()
                    changed.append(producer)
        return changed

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    def stats(self) -> dict[str, int]:
        return {
            "producers": len(self.producers),
            "consumers": len(self.consumers),
            "packets_in": sum(p.forwarder.packets for p in self.producers.values()),
            "packets_out": sum(c.rewriter.packets for c in self.consumers.values()),
            "ice_restarts": self.ice_restart.completed,
        }

    async def close(self, reason: str = "closed") -> None:
        """Idempotent: stop tasks, drop producers/consumers, close the connection."""
        if self.closed:
            await self.closed_event.wait()
            return
        self.closed = True
        self.close_reason = reason
        for task in (self._negotiation_task, self._rtcp_task):
            task.cancel()
        if self._twcc is not None:
            self._twcc.close()
        self.downlink.close()
        await asyncio.gather(self._negotiation_task, self._rtcp_task, self.ice_restart.stop(), return_exceptions=True)
        for producer in self.producers.values():
            producer.close()
        for consumer in self.consumers.values():
            consumer.close()
        try:
            await self.pc.close()
        except Exception:
            logger.exception("peer %s: error closing peer connection", self.id)
        self.closed_event.set()

    # ------------------------------------------------------------ hooks

    def _close_producer(self, producer: Producer) -> None:
        producer.close()
        self.producers.pop(producer.id, None)
        self._producer_by_mid.pop(producer.mid, None)
        self.transport.unroute(producer.layers)

    # ------------------------------------------------------------ private

    def _assert_open(self) -> None:
        if self.closed:
            raise InvalidStateError("peer is closed")

    def _adopt(self) -> None:
        for transceiver in self.pc.getTransceivers():
            bridge.adopt_transceiver(
                transceiver,
                on_receive=functools.partial(self._on_receive_params, transceiver),
                on_send=functools.partial(self._on_send_params, transceiver),
            )
        for dtls in bridge.dtls_transports(self.pc):
            self.transport.bind(dtls)
        for connection in bridge.ice_connections(self.pc):
            self._ice.prepare(connection)

    def _sync_producers(self, sources: dict[str, str]) -> tuple[list[Producer], list[Producer]]:
        added: list[Producer] = []
        removed: list[Producer] = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            receiving = transceiver.currentDirection in ("recvonly", "sendrecv")
            existing = self._producer_by_mid.get(mid)
            if existing is not None and not receiving:
                self._close_producer(existing)
                removed.append(existing)
            elif existing is None and receiving:
                if len(self.producers) >= self.config.max_producers_per_peer:
                    logger.info("peer %s: producer limit reached, ignoring mid %s", self.id, mid)
                    continue
                track = transceiver.receiver.track
                track_id = track.id if track is not None else mid
                source = sources.get(track_id) or sources.get(mid) or _DEFAULT_SOURCE[transceiver.kind]
                if _SOURCE_KIND.get(source) != transceiver.kind:
                    source = _DEFAULT_SOURCE[transceiver.kind]
                producer = Producer(
                    peer_id=self.id,
                    user_key=self.user_key,
                    kind=transceiver.kind,
                    source=source,
                    mid=mid,
                    track_id=track_id,
                    clock=self.clock,
                    send_rtcp=self._send_rtcp,
                    rtcp_ssrc=bridge.rtcp_ssrc(transceiver),
                    keyframe_interval=self.config.keyframe_request_interval,
                )
                producer.red_pt = self._red.producer_pt(mid)
                offered = self._simulcast.get(mid)
                if offered is not None:
                    producer.enable_simulcast(offered)
                codec = primary_codec(bridge.negotiated_codecs(transceiver))
                if codec is not None:
                    # keep offering the publisher the codec it chose, so a
                    # server re-offer never switches its encoder
                    try:
                        transceiver.setCodecPreferences(capability_for(transceiver.kind, codec))
                    except ValueError:
                        pass
                self.producers[producer.id] = producer
                self._producer_by_mid[mid] = producer
                params = self._receive_params.get(mid)
                if params is not None:
                    self._configure_producer(producer, params)
                added.append(producer)
        return added, removed

    def _accept_client_sending(self) -> None:
        # browsers' addTrack() reuses an m-line the server opened for a
        # consumer: receive on it as well (sendrecv) instead of ignoring it
        for transceiver in self.pc.getTransceivers():
            offered = bridge.offered_direction(transceiver)
            if offered is None or transceiver.mid is None:
                continue
            client_sends = offered in ("recvonly", "sendrecv")
            consumer = self._consumer_by_transceiver.get(transceiver)
            if consumer is not None:
                transceiver.direction = "sendrecv" if client_sends else "sendonly"
            elif transceiver.direction in ("inactive", "recvonly"):
                transceiver.direction = "recvonly" if client_sends else "inactive"
                if client_sends:
                    self._free = [(t, c) for t, c in self._free if t is not transceiver]

    def _configure_producer(self, producer: Producer, params: RTCRtpReceiveParameters) -> None:
        producer.configure(params)
        for ssrc in (producer.ssrc, producer.rtx_ssrc):
            if ssrc is not None:
                self.transport.route(ssrc, producer.forwarder.on_rtp)
        # its consumers (the room's business) follow the new payload types
        self._on_producer_configured(producer)

    def _on_receive_params(self, transceiver: RTCRtpTransceiver, params: RTCRtpReceiveParameters) -> None:
        if transceiver.mid is None:
            return
        self._receive_params[transceiver.mid] = params
        producer = self._producer_by_mid.get(transceiver.mid)
        if producer is not None:
            self._configure_producer(producer, params)

    def _on_send_params(self, transceiver: RTCRtpTransceiver, params: RTCRtpSendParameters) -> None:
        consumer = self._consumer_by_transceiver.get(transceiver)
        if consumer is not None and not consumer.closed and self.transport.bound:
            self.downlink.attach(consumer)
            consumer.configure(params, self.transport, self._cname)

    def _describe(self, sdp: str, *, answer: bool) -> str:
        """What the client gets of aiortc's description: what aiortc drops put back."""
        # DTX where the page enables it: asked of a client whose own offer asks for it
        dtx = self.config.opus_dtx and bool(self._client_dtx)
        sdp = opus_fec.request_fec(simulcast.accept(sdp, self._simulcast), dtx=dtx)
        return self.downlink.describe(self._red.describe(twcc.accept(sdp, self._twcc_offer), answer=answer))

    def _route_unknown(self, data: bytes) -> None:
        # a stream without a=ssrc lines: find its producer by the MID extension
        self.rtp_unknown += 1
        route_by_mid(list(self.producers.values()), self.transport.route, data)

    def _on_rtcp(self, data: bytes) -> None:
        for message in rtcp.parse_rtcp(data):
            if isinstance(message, rtcp.SenderReport):
                for producer in self.producers.values():
                    if producer.ssrc == message.ssrc or message.ssrc in producer.layer_ssrcs:
                        producer.on_sender_report(message)
            elif isinstance(message, rtcp.Nack):
                consumer = self._consumer_by_ssrc.get(message.media_ssrc)
                if consumer is not None:
                    consumer.on_nack(message.lost)
            elif isinstance(message, rtcp.KeyframeRequest):
                for ssrc in message.media_ssrcs:
                    consumer = self._consumer_by_ssrc.get(ssrc)
                    if consumer is not None:
                        consumer.request_keyframe()
            elif isinstance(message, rtcp.ReceiverReport):
                for block in message.reports:
                    consumer = self._consumer_by_ssrc.get(block.ssrc)
                    if consumer is not None:
                        consumer.on_receiver_report(block)
            elif isinstance(message, rtcp.Remb):
                for ssrc in message.ssrcs:
                    consumer = self._consumer_by_ssrc.get(ssrc)
                    if consumer is not None:
                        consumer.on_remb(message.bitrate)
            elif isinstance(message, rtcp.TransportFeedback):
                self.downlink.on_feedback(message.data)

    def _send_rtcp(self, data: bytes) -> None:
        if data:
            self.transport.send_rtcp(data)

    def _apply_pending(self) -> None:
        for consumer in self._pending:
            producer = consumer.producer
            if consumer.closed or producer is None:
                continue
            transceiver = None
            for i, (free, previous) in enumerate(self._free):
                if free.kind == consumer.kind:
                    transceiver = free
                    del self._free[i]
                    # same SSRC on the wire: continue its sequence numbers
                    prw, rw = previous.rewriter, consumer.rewriter
                    rw.last_seq, rw.last_ts, rw.last_at = prw.last_seq, prw.last_ts, prw.last_at
                    break
            if transceiver is None:
                transceiver = self.pc.addTransceiver(consumer.kind, direction="sendonly")
            codec = primary_codec(producer.codecs)
            if codec is not None:
                try:
                    transceiver.setCodecPreferences(capability_for(consumer.kind, codec))
                except ValueError:
                    logger.warning("peer %s: no capability for %s", self.id, codec.mimeType)
            bridge.set_sender_msid(transceiver.sender, producer.peer_id, producer.id)
            transceiver.direction = "sendrecv" if transceiver.mid in self._producer_by_mid else "sendonly"
            consumer.set_transceiver(transceiver)
            self._consumer_by_transceiver[transceiver] = consumer
            self._consumer_by_ssrc[consumer.ssrc] = consumer
            self._consumer_by_ssrc[consumer.rtx_ssrc] = consumer
        self._pending = []
        self._adopt()

    async def _run_negotiation(self) -> None:
        try:
            while True:
                await self._negotiation_needed.wait()
                await self.first_offer_done.wait()
                async with self._lock:
                    stable = self.pc.signalingState == "stable"
                    if stable:
                        self._negotiation_needed.clear()
                        self._apply_pending()
                        # aiortc's offer renumbers every codec: keep what was negotiated, else
                        # the browsers rebuild their send streams (encoders restart, issue 24)
                        state = bridge.negotiated_state(self.pc)
                        negotiated = {t.mid: codecs for t, (codecs, _) in state.items() if t.mid is not None}
                        offer = await self.pc.createOffer()
                        # what was negotiated stays in force until the client answers
                        bridge.restore_negotiated(state)
                        # keep the client's header extension ids (browsers refuse renumbering)
                        # and state the DTLS role already negotiated (Firefox, issue 24)
                        sdp = keep_payload_types(align_extmap(offer.sdp, self._extmap), negotiated)
                        sdp = bridge.pin_dtls_setup(self.pc, sdp)
                        offer = RTCSessionDescription(sdp=sdp, type="offer")
                        # aiortc keeps its own description; the client also sees the
                        # simulcast it sends still accepted (else it falls back to one layer)
                        self._offer_sdp = self._describe(offer.sdp, answer=False)
                        await self.pc.setLocalDescription(offer)
                        self._adopt()
                        self._answer_received.clear()
                        self._offer_in_flight = True
                        releasing, self._releasing = self._releasing, []
                if not stable:
                    # a client offer left the connection mid-negotiation: retry shortly
                    await asyncio.sleep(0.1)
                    continue
                self._on_offer(self)
                self.notify(Offer(self._offer_sdp))
                try:
                    await asyncio.wait_for(self._answer_received.wait(), self.config.answer_timeout)
                except asyncio.TimeoutError:
                    logger.warning("peer %s: no answer to server offer", self.id)
                    self.notify(PeerError("answer_timeout", "no answer to the server offer"))
                    self._on_failed(self)
                    return
                finally:
                    self._offer_in_flight = False
                self._free.extend(releasing)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("peer %s: negotiation failed", self.id)
            self.notify(PeerError("negotiation_failed", "server renegotiation failed"))
            self._on_failed(self)

    async def _run_rtcp(self) -> None:
        self._tasks_started.set()
        try:
            while True:
                # RFC 3550 randomises the interval in [0.5, 1.5] x nominal
                await asyncio.sleep(0.5 + random.random())
                if not self.transport.bound:
                    continue
                reports = [producer.feedback() for producer in list(self.producers.values())]
                # (each consumer's layer is re-aimed by the router's 0.5 s tick, not here)
                ntp = ntp_now()
                reports += [c.sender_report(ntp) for c in list(self.consumers.values()) if c.ready]
                # one SRTCP datagram for all of them where they fit, not one per stream
                for compound in rtcp.pack_compounds(reports, RTCP_COMPOUND_BYTES):
                    self._send_rtcp(compound)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("peer %s: RTCP loop failed", self.id)

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "connected" and not self.closed:
            self._on_connected(self)
        if self.pc.connectionState in ("failed", "closed") and not self.closed:
            self._on_failed(self)
