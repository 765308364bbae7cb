"""Consumer: one track the server sends to a participant (a subscriber)."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Optional

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

from . import aiortc_bridge as bridge
from . import rtcp
from .codecs import payload_type_map, primary_codec, rtx_payload_type
from .forwarding import ExtensionWriter, RtpRewriter, SendFunc
from .producer import Producer

logger = logging.getLogger(__name__)

_NTP_EPOCH = 2208988800


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
        self.ready = False
        self.closed = False
        self.keyframe_requests = 0
        self.nacks = 0
        self._send: Optional[SendFunc] = None
        self._ext = ExtensionWriter({}, None)
        self._cname = "sfu"
        self.rewriter = RtpRewriter(
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

    def configure(self, parameters: RTCRtpSendParameters, send: SendFunc, cname: str) -> None:
        """Apply the subscriber's negotiated parameters and start forwarding."""
        self.codecs = list(parameters.codecs)
        self._send = send
        self._cname = cname
        self._ext = ExtensionWriter({e.uri: e.id for e in parameters.headerExtensions}, parameters.muxId)
        self.refresh()
        self.ready = True
        self.request_keyframe()

    def bind(self, producer: Producer) -> None:
        """Forward ``producer`` from now on, continuing our sequence numbers."""
        if self.producer is producer:
            return
        if self.producer is not None:
            self.producer.detach(self.rewriter, self.id)
        self.producer = producer
        self.publisher_peer_id = producer.peer_id
        self.rewriter.clock_rate = producer.clock_rate
        self.rewriter.resync()
        producer.attach(self.rewriter)
        if self.ready:
            self.refresh()
            self.request_keyframe()

    def unbind(self) -> None:
        if self.producer is not None:
            self.producer.detach(self.rewriter, self.id)
            self.producer = None

    def request_keyframe(self) -> None:
        if self.producer is not None and self.kind == "video":
            self.keyframe_requests += 1
            self.producer.request_keyframe()

    def on_nack(self, lost: list[int]) -> None:
        self.nacks += 1
        self.rewriter.retransmit(lost)

    def on_remb(self, bitrate: int) -> None:
        if self.producer is not None:
            self.producer.on_remb(self.id, bitrate)

    def sender_report(self) -> bytes:
        """Our SR: the publisher's NTP/RTP relation moved into our timestamp space."""
        producer = self.producer
        rw = self.rewriter
        if producer is None or producer.last_sr is None or not rw.packets or not rw.synced:
            return b""
        _, sr_rtp, arrived = producer.last_sr
        now = self.clock()
        rtp_now = sr_rtp + int((now - arrived) * rw.clock_rate) + rw.ts_off
        # the NTP time is "now" on our clock; the RTP time is what the
        # publisher's clock reads now, so audio and video of one publisher
        # keep the relation the publisher reported
        ntp = ntp_now()
        return rtcp.build_sr(rw.ssrc, ntp, rtp_now, rw.packets, rw.octets) + rtcp.build_sdes(
            rw.ssrc, self._cname
        )

    def close(self) -> None:
        """Idempotent: stop forwarding and leave the producer."""
        if self.closed:
            return
        self.closed = True
        self.unbind()
        self.rewriter.send = None
        self.ready = False

    def refresh(self) -> None:
        """Follow the producer's (re)negotiated payload types (the router calls it)."""
        producer = self.producer
        if producer is None or self._send is None:
            return
        pt_map = payload_type_map(producer.codecs, self.codecs)
        primary = primary_codec(self.codecs)
        rtx_pt = (rtx_payload_type(self.codecs, primary.payloadType)
                  if primary is not None and primary.payloadType is not None else None)
        self.rewriter.configure(pt_map=pt_map, rtx_pt=rtx_pt, ext=self._ext, send=self._send)
