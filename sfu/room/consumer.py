"""Consumer: one track the server sends to a participant (a subscriber)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Optional

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

from ..transport import aiortc_bridge as bridge
from ..rtp import native
from ..rtp import rtcp
from ..rtp.codecs import payload_type_map, primary_codec, rtx_payload_type
from ..rtp.forwarding import RtpSink
from ..rtp.header_extensions import URI_TRANSPORT_CC, ExtensionWriter
from ..rtp.layers import DownlinkGauge, LayerSwitch, StarvedLayerHold, choose_layer, without_frame_rates
from .producer import Producer

logger = logging.getLogger(__name__)

_NTP_EPOCH = 2208988800
#: a layer switch still waiting for its keyframe asks again after this long
SWITCH_RETRY_SECONDS = 1.0


def ntp_now() -> int:
    """Current wall time as a 64-bit NTP timestamp."""
    return int((time.time() + _NTP_EPOCH) * 4294967296.0)


class Consumer:
    """Forwards one producer to one subscriber; survives the publisher's reconnect."""

    def __init__(
        self,
        *,
        subscriber_id: str,
        producer: Producer,
        clock: Callable[[], float],
        history_size: int,
    ) -> None:
        self.id = "co-" + secrets.token_hex(6)
        self.subscriber_id = subscriber_id
        self.kind = producer.kind
        self.source = producer.source
        self.publisher_peer_id = producer.peer_id
        self.user_key = producer.user_key
        self.clock = clock
        self.producer: Optional[Producer] = None
        self.transceiver: Optional[RTCRtpTransceiver] = None
        self.codecs: list[RTCRtpCodecParameters] = []
        #: the subscriber's payload type for Opus RED, when it took RED on our m-section
        self.red_pt: Optional[int] = None
        self.ready = False
        self.closed = False
        self.keyframe_requests = 0
        self.nacks = 0
        #: a simulcast producer's layer this consumer receives (None without simulcast)
        self.switch: Optional[LayerSwitch] = None
        #: the subscriber's downlink, from its receiver reports and REMB
        self.downlink = DownlinkGauge()
        #: keeps the subscriber off a layer the publisher starved (rtp/layers.py)
        self.starved = StarvedLayerHold()
        self._switched_at = 0.0
        self._switch_asked_at = 0.0
        #: toward a subscriber with transport-cc: its extension id (the rewriter numbers each
        #: packet) and its downlink's share for this consumer (None: no estimate yet)
        self.transport_cc = 0
        self.budget: Optional[Callable[[Consumer], Optional[int]]] = None
        #: the height the subscriber shows this video at (None: unknown, no limit)
        self.max_height: Optional[int] = None
        #: the subscriber's last receiver report on this stream
        self.loss = 0.0
        self.jitter_ms: Optional[float] = None
        self.rtt_ms: Optional[float] = None
        #: where the rewriter sends: the subscriber's MediaTransport
        self._sink: Optional[RtpSink] = None
        self._ext = ExtensionWriter({}, None)
        self._cname = "sfu"
        #: the SDES chunk of the last SR, built again only when the SSRC or the CNAME changes
        self._sdes: tuple[tuple[int, str], bytes] = ((-1, ""), b"")
        #: what configure() last applied (codecs, extension ids, mid, sink)
        self._configured: Optional[tuple[object, ...]] = None
        self.rewriter = native.Rewriter(
            ssrc=0,
            rtx_ssrc=0,
            clock_rate=producer.clock_rate,
            needs_keyframe=producer.kind == "video",
            history_size=history_size if producer.kind == "video" else 0,
            request_keyframe=self.request_keyframe,
        )
        self.bind(producer)

    # ------------------------------------------------------------ properties

    @property
    def mid(self) -> Optional[str]:
        return self.transceiver.mid if self.transceiver is not None else None

    @property
    def ssrc(self) -> int:
        return self.rewriter.ssrc

    @property
    def rtx_ssrc(self) -> int:
        return self.rewriter.rtx_ssrc

    # ------------------------------------------------------------ public

    def set_transceiver(self, transceiver: RTCRtpTransceiver) -> None:
        self.transceiver = transceiver
        self.rewriter.ssrc, self.rewriter.rtx_ssrc = bridge.sender_ssrcs(transceiver.sender)

    def configure(self, parameters: RTCRtpSendParameters, sink: RtpSink, cname: str) -> None:
        """Apply the subscriber's negotiated parameters and start forwarding into ``sink``."""
        ids = {e.uri: e.id for e in parameters.headerExtensions}
        if self.transport_cc:
            ids[URI_TRANSPORT_CC] = self.transport_cc  # aiortc does not know it: negotiated by our SDP layer
        signature = (
            tuple((c.mimeType.lower(), c.payloadType, c.clockRate) for c in parameters.codecs),
            tuple(sorted(ids.items())),
            parameters.muxId,
            sink,
        )
        # Every re-offer hands the same parameters over twice (after our offer and after the
        # answer): the subscriber's decoder has lost nothing then, and a keyframe it does not
        # need costs every publisher's encoder a spike of bits and the class a soft picture.
        unchanged = self.ready and signature == self._configured
        self._configured = signature
        self.codecs = list(parameters.codecs)
        self._sink = sink
        self._cname = cname
        self._ext = ExtensionWriter(ids, parameters.muxId)
        self.refresh()
        self.ready = True
        self.update_layer()
        if not unchanged:
            self.request_keyframe()

    def bind(self, producer: Producer) -> None:
        """Forward ``producer`` from now on, continuing our sequence numbers."""
        if self.producer is producer:
            return
        self.unbind()
        self.producer = producer
        self.publisher_peer_id = producer.peer_id
        self.rewriter.clock_rate = producer.clock_rate
        self.rewriter.resync()
        self.switch = (
            LayerSwitch(self.rewriter, len(producer.layers), producer.request_keyframe, producer.arrived_after)
            if producer.simulcast
            else None
        )
        producer.attach(self.switch or self.rewriter)
        if self.ready:
            self.refresh()
            self.request_keyframe()

    def unbind(self) -> None:
        if self.producer is not None:
            self.producer.detach(self.switch or self.rewriter, self.id)
            self.producer = None
            self.switch = None

    def request_keyframe(self) -> None:
        if self.producer is not None and self.kind == "video":
            self.keyframe_requests += 1
            if self.switch is not None:
                self.switch.request_keyframe()
            else:
                self.producer.request_keyframe()

    def update_layer(self) -> None:
        """Aim at the simulcast layer that fits this subscriber now (the switch happens
        at that layer's next keyframe)."""
        producer, switch = self.producer, self.switch
        if producer is None or switch is None or not self.ready:
            return
        current = switch.current if switch.current >= 0 else switch.target
        # the subscriber's transport-wide estimate when it has one, else its reports and REMB
        estimate = self.budget(self) if self.budget is not None else None
        if estimate is None:
            estimate = self.downlink.estimate(self.clock())
        states = producer.layer_states()
        target = choose_layer(states, current=current, estimate_bps=estimate, max_height=self.max_height)
        now = self.clock()
        starved_below = target < current and target < choose_layer(
            without_frame_rates(states), current=current, estimate_bps=estimate, max_height=self.max_height
        )
        target = self.starved.limit(target, current=current, starved_below=starved_below, now=now)
        if target != switch.target:
            self._switched_at = self._switch_asked_at = now
        elif switch.pending and now - self._switch_asked_at >= SWITCH_RETRY_SECONDS:
            # still waiting for the target layer's keyframe: set_target asked once, and a
            # lost request (or a keyframe that came while the layer was paused) left the
            # subscriber on its old layer for good; the producer's rate limit still applies
            self._switch_asked_at = now
            switch.request_target_keyframe()
        switch.set_target(target)

    def on_receiver_report(self, block: rtcp.ReportBlock) -> None:
        """The subscriber's report on our stream: loss, jitter, and the round trip from
        our last sender report (LSR/DLSR, RFC 3550 6.4.1)."""
        self.loss = block.fraction_lost / 256
        self.jitter_ms = block.jitter * 1000 / self.rewriter.clock_rate
        if block.lsr:
            now = (ntp_now() >> 16) & 0xFFFFFFFF
            rtt = ((now - block.lsr - block.dlsr) & 0xFFFFFFFF) / 65536
            if rtt < 10:  # a report on an SR from before a wrap or a restart says nothing
                self.rtt_ms = rtt * 1000
        self._downlink_report(loss=self.loss, remb=None)

    def _downlink_report(self, *, loss: Optional[float], remb: Optional[int]) -> None:
        producer, switch = self.producer, self.switch
        if producer is None or switch is None or switch.current < 0:
            return
        now = self.clock()
        sending = producer.layer_states()[switch.current].bitrate
        before = self.downlink.cap
        self.downlink.on_report(
            now=now, loss=loss, remb=remb, sending_bps=sending, since_switch=now - self._switched_at
        )
        if self.downlink.cap != before:
            self.update_layer()  # congestion: step down now, not at the next tick

    @property
    def layer(self) -> Optional[int]:
        """The simulcast layer being forwarded now (None without simulcast or before the first)."""
        return self.switch.current if self.switch is not None and self.switch.current >= 0 else None

    def on_nack(self, lost: list[int]) -> None:
        self.nacks += 1
        self.rewriter.retransmit(lost)

    def on_remb(self, bitrate: int) -> None:
        self._downlink_report(loss=None, remb=bitrate)
        if self.producer is not None:
            self.producer.on_remb(self.id, bitrate)

    def sender_report(self, ntp: Optional[int] = None) -> bytes:
        """Our SR and SDES: the publisher's NTP/RTP relation moved into our timestamp space.
        ``ntp``: now as an NTP timestamp, when the caller reports on several streams at once."""
        producer = self.producer
        rw = self.rewriter
        sr = producer.sender_report(self.layer or 0) if producer is not None else None
        if producer is None or sr is None or not rw.packets or not rw.synced:
            return b""
        _, sr_rtp, arrived = sr
        now = self.clock()
        rtp_now = sr_rtp + int((now - arrived) * rw.clock_rate) + rw.ts_off
        # the NTP time is "now" on our clock; the RTP time is what the
        # publisher's clock reads now, so audio and video of one publisher
        # keep the relation the publisher reported
        if ntp is None:
            ntp = ntp_now()
        if self._sdes[0] != (rw.ssrc, self._cname):
            self._sdes = ((rw.ssrc, self._cname), rtcp.build_sdes(rw.ssrc, self._cname))
        return rtcp.build_sr(rw.ssrc, ntp, rtp_now, rw.packets, rw.octets) + self._sdes[1]

    def close(self) -> None:
        """Idempotent: stop forwarding and leave the producer."""
        if self.closed:
            return
        self.closed = True
        self.unbind()
        self.rewriter.sink = None
        self.ready = False

    def refresh(self) -> None:
        """Follow the producer's (re)negotiated payload types (the router calls it)."""
        producer = self.producer
        if producer is None or self._sink is None:
            return
        pt_map = payload_type_map(producer.codecs, self.codecs)
        primary = primary_codec(self.codecs)
        rtx_pt = (
            rtx_payload_type(self.codecs, primary.payloadType)
            if primary is not None and primary.payloadType is not None
            else None
        )
        # a RED publisher's packets go out as RED to a subscriber that took it (its own RED
        # and Opus payload types), else as the primary Opus frame alone (sfu/rtp/red.py)
        red_in = producer.red_pt if self.kind == "audio" else None
        if red_in is not None and self.red_pt is not None:
            pt_map[red_in] = self.red_pt
        self.rewriter.configure(
            pt_map=pt_map,
            rtx_pt=rtx_pt,
            ext=self._ext,
            sink=self._sink,
            red_pt=red_in,
            red_keep=self.red_pt is not None,
            # picture ids continue across layer switches (sfu/rtp/vp8.py Vp8Numbering)
            vp8_pts=frozenset(
                c.payloadType
                for c in producer.codecs
                if c.mimeType.lower() == "video/vp8" and c.payloadType is not None
            ),
        )
