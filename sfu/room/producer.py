"""Producer: one track a participant sends to the server."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Optional

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from ..rtp import native
from ..rtp import rtcp
from ..rtp.codecs import is_rtx
from ..rtp.forwarding import RtpForwarder, RtpRewriter, keyframe_detector
from ..rtp.header_extensions import URI_AUDIO_LEVEL, URI_MID
from ..rtp.layers import LayerState, LayerSwitch
from ..rtp.simulcast import SimulcastOffer
from ..rtp.upstream_nack import UpstreamNack
from ..rtp.vp8 import vp8_descriptor_length, vp8_frame_size

logger = logging.getLogger(__name__)

SOURCES = ("camera", "mic", "screen")
#: a layer that sent nothing for this long is taken as stopped (browsers drop layers
#: when their CPU or uplink cannot carry them)
LAYER_IDLE_SECONDS = 1.5
#: every layer silent for this long at once: the publisher (or the network) stopped, not a layer
SILENCE_SECONDS = 1.0


class Producer:
    """A publisher's track: ingress forwarder, keyframe requests, SR/REMB state.

    It fans packets out to the rewriters attached to its forwarder and knows nothing of
    the consumers around them: the router owns the producer -> consumers map.

    A simulcast publisher's track has one forwarder per layer (``layers``, lowest quality
    first); ``forwarder`` is then the top layer, the one the recorder keeps.
    """

    def __init__(
        self,
        *,
        peer_id: str,
        user_key: str,
        kind: str,
        source: str,
        mid: str,
        track_id: str,
        clock: Callable[[], float],
        send_rtcp: Callable[[bytes], None],
        rtcp_ssrc: int,
        keyframe_interval: float = 1.0,
    ) -> None:
        if kind not in ("audio", "video"):
            raise TypeError(f"invalid kind {kind!r}")
        if source not in SOURCES:
            raise TypeError(f"invalid source {source!r}")
        self.id = "pr-" + secrets.token_hex(6)
        self.peer_id = peer_id
        self.user_key = user_key
        self.kind = kind
        self.source = source
        self.mid = mid
        self.track_id = track_id
        self.clock = clock
        self.codecs: list[RTCRtpCodecParameters] = []
        self.ssrc: Optional[int] = None
        self.rtx_ssrc: Optional[int] = None
        self.mid_ext_id = 0
        #: the payload type of Opus RED (RFC 2198) on this track, when negotiated (audio)
        self.red_pt: Optional[int] = None
        self.forwarder = native.Forwarder(producer_id=self.id, kind=kind, clock=clock)
        self.layers: list[RtpForwarder] = [self.forwarder]
        self.rids: tuple[str, ...] = ()
        self.rid_ext_id = 0
        self.rrid_ext_id = 0
        self.layer_ssrcs: list[Optional[int]] = [None]
        self._layer_sr: dict[int, tuple[int, int, float]] = {}
        #: (sampled at, octets, bps, frames, fps) per layer
        self._layer_rate: list[tuple[float, int, int, int, float]] = [(0.0, 0, 0, 0, 0.0)]
        self._layer_height: list[int] = [0]
        self.closed = False
        if kind == "video":
            self.forwarder.nack = UpstreamNack(clock, self._nack_sender(0), self._lost(0))
        self.forwarder.on_gap = self._gap_seen(0)
        #: holes in the stream no NACK could fill (blackouts, restarts)
        self.gaps = 0
        self.keyframe_requests_sent = 0
        self._send_rtcp = send_rtcp
        self._rtcp_ssrc = rtcp_ssrc
        self._keyframe_interval = keyframe_interval
        self._last_keyframe_request: dict[int, float] = {}
        self._keyframe_timers: dict[int, asyncio.TimerHandle] = {}
        self._remb: dict[str, int] = {}
        self._remb_dirty = False
        #: publisher's last sender report: (ntp, rtp timestamp, local arrival time)
        self.last_sr: Optional[tuple[int, int, float]] = None
        #: the last stretch in which no layer arrived at all (a blackout): (from, until)
        self.silence: Optional[tuple[float, float]] = None

    # ------------------------------------------------------------ properties

    @property
    def paused(self) -> bool:
        return self.forwarder.paused

    @property
    def clock_rate(self) -> int:
        for codec in self.codecs:
            if not is_rtx(codec):
                return codec.clockRate
        return 90000 if self.kind == "video" else 48000

    @property
    def simulcast(self) -> bool:
        return len(self.layers) > 1

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "source": self.source, "muted": self.paused}

    # ------------------------------------------------------------ simulcast

    def enable_simulcast(self, offer: SimulcastOffer) -> None:
        """Receive ``offer``'s layers, one forwarder each (before anyone consumes us)."""
        if self.kind != "video" or self.simulcast or len(offer.rids) < 2:
            return
        self.rids = offer.rids
        self.rid_ext_id = offer.rid_ext
        self.rrid_ext_id = offer.rrid_ext
        template = self.forwarder
        self.layers = [native.Forwarder(producer_id=self.id, kind=self.kind, clock=self.clock) for _ in offer.rids]
        for layer in self.layers:
            layer.detectors = template.detectors
            layer.rtx_apt = template.rtx_apt
        self.forwarder = self.layers[-1]
        self.layer_ssrcs = [None] * len(self.layers)
        self._layer_rate = [(0.0, 0, 0, 0, 0.0)] * len(self.layers)
        self._layer_height = [0] * len(self.layers)
        template.nack = None
        for i, layer in enumerate(self.layers):
            layer.on_keyframe = self._keyframe_seen(i)
            layer.on_gap = self._gap_seen(i)
            layer.nack = UpstreamNack(self.clock, self._nack_sender(i), self._lost(i))

    def repairs(self) -> tuple[int, float]:
        """Packets of this track repaired so far (all layers), and the longest time a repair
        takes on a layer that needed any (seconds; 0.0 before the first)."""
        repaired, seconds = 0, 0.0
        for layer in self.layers:
            nack = layer.nack
            if nack is not None and nack.repaired:
                repaired += nack.repaired
                seconds = max(seconds, nack.rtt)
        return repaired, seconds

    def layer_of(self, rid: str) -> Optional[int]:
        return self.rids.index(rid) if rid in self.rids else None

    def learn_layer_ssrc(self, layer: int, ssrc: int) -> None:
        self.layer_ssrcs[layer] = ssrc
        if layer == len(self.layers) - 1:
            self.ssrc = ssrc

    def arrived_after(self, layer: int, seq: int) -> bool:
        """A packet newer than ``seq`` already arrived on ``layer``: ``seq`` is late (a
        repair, or reordered)."""
        last = self.layers[layer].last_seq
        return last >= 0 and 0 < ((last - seq) & 0xFFFF) < 0x8000

    def layer_states(self) -> list[LayerState]:
        """Each layer now: sending or not, its ingress bitrate, its height.

        A layer that was sending when the whole publisher went silent (a blackout) counts as
        sending for ``LAYER_IDLE_SECONDS`` after the publisher came back: browsers resume their
        layers one by one (the top one last, once their estimate recovers, 0.2-0.4 s later in
        Chromium), and taking the top layer for stopped in between switched its subscribers
        down and up again, each time waiting for a keyframe."""
        now = self.clock()
        silence = self.silence
        out = []
        for i, layer in enumerate(self.layers):
            at, octets, bps, frames, fps = self._layer_rate[i]
            if now - at >= 0.5:
                bps = int((layer.media_octets - octets) * 8 / (now - at)) if at else 0
                fps = (layer.frames - frames) / (now - at) if at else 0.0
                self._layer_rate[i] = (now, layer.media_octets, bps, layer.frames, fps)
            active = layer.packets > 0 and now - layer.last_arrival < LAYER_IDLE_SECONDS
            if not active and layer.packets > 0 and silence is not None:
                since, until = silence
                active = (
                    layer.last_arrival <= until
                    and since - layer.last_arrival < LAYER_IDLE_SECONDS
                    and now - until < LAYER_IDLE_SECONDS
                )
            out.append(LayerState(active, bps, self._layer_height[i], fps if self.kind == "video" else 0.0))
        return out

    def sender_report(self, layer: int) -> Optional[tuple[int, int, float]]:
        """The publisher's last SR of ``layer`` (each layer has its own RTP clock offset)."""
        return self._layer_sr.get(layer) if self.simulcast else self.last_sr

    # ------------------------------------------------------------ public

    def configure(self, parameters: RTCRtpReceiveParameters) -> None:
        """Apply (re)negotiated receive parameters: payload types, ssrcs, extensions.

        A renegotiation may renumber this m-line: aiortc's server offers use its own
        payload types (VP8 97 / RTX 98) where Chromium first offered VP8 96 / RTX 97, and
        the browser then sends on the new numbers. The latest negotiation is the truth.
        Earlier payload types stay known only where the new one does not reuse them (for
        packets still in flight); a stale entry such as "97 is RTX of 96" would make every
        VP8 packet on 97 look like a retransmission and no keyframe would ever pass.
        """
        fresh = {c.payloadType: c for c in parameters.codecs}
        kept = {c.payloadType: c for c in self.codecs if c.payloadType not in fresh and not is_rtx(c)}
        # an old RTX payload type survives only while the one it repairs means the same
        kept.update(
            {
                c.payloadType: c
                for c in self.codecs
                if is_rtx(c) and c.payloadType not in fresh and c.parameters.get("apt") in kept
            }
        )
        # the fresh codecs first: consumers map from the first compatible payload type
        self.codecs = list(fresh.values()) + list(kept.values())
        rtx_apt: dict[int, int] = {}
        detectors: dict[int, Optional[Callable[[bytes], bool]]] = {}
        for codec in self.codecs:
            if codec.payloadType is None:
                continue
            if is_rtx(codec):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    rtx_apt[codec.payloadType] = apt
            else:
                detectors[codec.payloadType] = keyframe_detector(codec.name) if self.kind == "video" else None
        for fwd in self.layers:
            # swapped whole: the packet path reads these dicts without locks
            fwd.rtx_apt = rtx_apt
            fwd.detectors = detectors
        for ext in parameters.headerExtensions:
            if ext.uri == URI_AUDIO_LEVEL and self.kind == "audio":
                self.forwarder.level_id = ext.id
            elif ext.uri == URI_MID:
                self.mid_ext_id = ext.id
        for encoding in parameters.encodings if not self.simulcast else ():
            if encoding.ssrc:
                self.ssrc = encoding.ssrc
                self.layer_ssrcs[0] = encoding.ssrc
            if encoding.rtx is not None and encoding.rtx.ssrc:
                self.rtx_ssrc = encoding.rtx.ssrc

    def pause(self) -> None:
        for layer in self.layers:
            layer.paused = True

    def resume(self) -> None:
        if self.forwarder.paused:
            for layer in self.layers:
                layer.paused = False
            for rewriter in {id(r): r for layer in self.layers for r in layer.rewriters}.values():
                rewriter.resync()
            self.request_keyframe()

    def request_keyframe(self, layer: Optional[int] = None) -> None:
        """Ask the publisher for a keyframe (of one simulcast layer, or of every layer),
        at most once per interval and layer; a request inside the interval is deferred,
        never dropped."""
        if self.kind != "video" or self.closed:
            return
        now = self.clock()
        for i in range(len(self.layers)) if layer is None else (layer,):
            wait = self._last_keyframe_request.get(i, -1e9) + self._keyframe_interval - now
            if wait <= 0:
                self._send_keyframe_request(i, now)
            elif i not in self._keyframe_timers:
                loop = asyncio.get_running_loop()
                self._keyframe_timers[i] = loop.call_later(wait, self._deferred_keyframe_request, i)

    def on_sender_report(self, report: rtcp.SenderReport) -> None:
        value = (report.ntp, report.rtp_timestamp, self.clock())
        if report.ssrc in self.layer_ssrcs:
            self._layer_sr[self.layer_ssrcs.index(report.ssrc)] = value
        if report.ssrc == self.ssrc:
            self.last_sr = value

    def on_remb(self, consumer_id: str, bitrate: int) -> None:
        self._remb[consumer_id] = bitrate
        self._remb_dirty = True

    def feedback(self) -> bytes:
        """Periodic RTCP to the publisher: a receiver report on every stream it sends, and
        aggregated REMB.

        A simulcast publisher gets a report block per layer from that layer's first packet:
        a browser's send-side estimate grows on reports about its video, and waiting for the
        top layer (which it sends only once the estimate allows it) kept it on audio
        reports alone for many seconds.
        """
        blocks = []
        ssrcs = self.layer_ssrcs if self.simulcast else [self.ssrc]
        for i, (ssrc, layer) in enumerate(zip(ssrcs, self.layers)):
            if ssrc is None:
                continue
            sr = self._layer_sr.get(i) if self.simulcast else self.last_sr
            lsr = dlsr = 0
            if sr is not None:
                ntp, _, arrived = sr
                lsr = (ntp >> 16) & 0xFFFFFFFF
                dlsr = int(max(self.clock() - arrived, 0.0) * 65536) & 0xFFFFFFFF
            blocks.append(rtcp.ReportBlock(ssrc, 0, 0, layer.highest_sequence, 0, lsr, dlsr))
        if not blocks:
            return b""
        out = rtcp.build_rr(self._rtcp_ssrc, blocks)
        # Without simulcast the publisher may send only what the slowest subscriber can
        # take. With it, each subscriber gets the layer that fits it, so subscribers' REMB
        # must not cap the publisher (one weak link would degrade the whole room).
        if self._remb and self._remb_dirty and not self.simulcast and self.ssrc is not None:
            out += rtcp.build_remb(self._rtcp_ssrc, min(self._remb.values()), [self.ssrc])
            self._remb_dirty = False
        return out

    def attach(self, sink: RtpRewriter | LayerSwitch) -> None:
        # copy-on-write: the hot loop iterates the list it already holds
        if isinstance(sink, LayerSwitch):
            for layer, tap in zip(self.layers, sink.taps):
                if tap not in layer.rewriters:
                    layer.rewriters = layer.rewriters + [tap]
        elif sink not in self.forwarder.rewriters:
            self.forwarder.rewriters = self.forwarder.rewriters + [sink]

    def detach(self, sink: RtpRewriter | LayerSwitch, consumer_id: str) -> None:
        self._remb.pop(consumer_id, None)
        gone = set(map(id, sink.taps)) if isinstance(sink, LayerSwitch) else {id(sink)}
        for layer in self.layers:
            layer.rewriters = [r for r in layer.rewriters if id(r) not in gone]

    def close(self) -> None:
        """Idempotent; consumers are detached by their owner (the router)."""
        if self.closed:
            return
        self.closed = True
        for layer in self.layers:
            layer.rewriters = []
            layer.taps = []
            if layer.nack is not None:
                layer.nack.close()
        for timer in self._keyframe_timers.values():
            timer.cancel()
        self._keyframe_timers.clear()

    # ------------------------------------------------------------ private

    def _nack_sender(self, layer: int) -> Callable[[list[int]], None]:
        def send(seqs: list[int]) -> None:
            ssrc = self.layer_ssrcs[layer] if self.simulcast else self.ssrc
            if ssrc is not None and not self.closed:
                self._send_rtcp(rtcp.build_nack(self._rtcp_ssrc, ssrc, seqs))

        return send

    def _lost(self, layer: int) -> Callable[[], None]:
        def lost() -> None:
            # A packet no NACK brought back: every subscriber of this layer now holds a
            # frame it cannot decode, and the frames after it refer to it. Chrome asks for a
            # keyframe only after ~3 s without a decodable frame; ask now instead.
            if self.layers[layer].rewriters:
                self.request_keyframe(layer)

        return lost

    def _gap_seen(self, layer: int) -> Callable[[], None]:
        def gap() -> None:
            # After a blackout the subscribers would see the hole, NACK packets nobody
            # has, and wait for their own decoder to give up (~3 s in Chrome) before
            # asking for a keyframe. Instead each restarts now: the packet that follows
            # the hole is held back unless it is a keyframe, a keyframe is asked for at
            # once, and sequence numbers go on without a hole (nothing to NACK).
            self.gaps += 1
            self._note_silence(layer)
            self._forget_keyframe_request(layer)
            for sink in self.layers[layer].rewriters:
                sink.resync()

        return gap

    def _note_silence(self, layer: int) -> None:
        """``layer`` is back after a hole: if no other layer sent anything meanwhile either,
        the whole publisher was silent (``silence``, which ``layer_states`` forgives)."""
        now = self.layers[layer].last_arrival  # this packet's arrival
        others = [f.last_arrival for i, f in enumerate(self.layers) if i != layer and f.packets > 0]
        if others and all(now - at > SILENCE_SECONDS for at in others):
            self.silence = (max(others), now)

    def _forget_keyframe_request(self, layer: int) -> None:
        # A keyframe asked for before the hole went into the outage (or came before it and
        # is of no use after it): the request this restart makes goes out at once instead
        # of up to a second later, and one waiting for the interval goes now. At most one
        # such extra request per hole, so the rate limit still holds against subscribers.
        self._last_keyframe_request.pop(layer, None)
        timer = self._keyframe_timers.pop(layer, None)
        if timer is not None:
            timer.cancel()
            self._send_keyframe_request(layer, self.clock())

    def _keyframe_seen(self, layer: int) -> Callable[[bytes], None]:
        def seen(payload: bytes) -> None:
            _start, _pid, skip = vp8_descriptor_length(payload)
            size = vp8_frame_size(payload[skip:]) if skip else None
            if size is not None:
                self._layer_height[layer] = size[1]

        return seen

    def _deferred_keyframe_request(self, layer: int) -> None:
        self._keyframe_timers.pop(layer, None)
        if not self.closed:
            self._send_keyframe_request(layer, self.clock())

    def _send_keyframe_request(self, layer: int, now: float) -> None:
        self._last_keyframe_request[layer] = now
        ssrc = self.layer_ssrcs[layer] if self.simulcast else self.ssrc
        if ssrc is None:
            return
        self.keyframe_requests_sent += 1
        self._send_rtcp(rtcp.build_pli(self._rtcp_ssrc, ssrc))
