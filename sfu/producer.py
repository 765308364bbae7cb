"""Producer: one track a participant sends to the server."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Optional

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters

from . import rtcp
from .codecs import is_rtx
from .forwarding import URI_AUDIO_LEVEL, URI_MID, RtpForwarder, RtpRewriter, keyframe_detector

logger = logging.getLogger(__name__)

SOURCES = ("camera", "mic", "screen")


class Producer:
    """A publisher's track: ingress forwarder, keyframe requests, SR/REMB state.

    It fans packets out to the rewriters attached to its forwarder and knows nothing of
    the consumers around them: the router owns the producer -> consumers map.
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
        self.forwarder = RtpForwarder(producer_id=self.id, kind=kind, clock=clock)
        self.closed = False
        self.keyframe_requests_sent = 0
        self._send_rtcp = send_rtcp
        self._rtcp_ssrc = rtcp_ssrc
        self._keyframe_interval = keyframe_interval
        self._last_keyframe_request = -1e9
        self._keyframe_timer: Optional[asyncio.TimerHandle] = None
        self._remb: dict[str, int] = {}
        self._remb_dirty = False
        #: publisher's last sender report: (ntp, rtp timestamp, local arrival time)
        self.last_sr: Optional[tuple[int, int, float]] = None

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

    def describe(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "source": self.source, "muted": self.paused}

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
        kept.update({
            c.payloadType: c for c in self.codecs
            if is_rtx(c) and c.payloadType not in fresh and c.parameters.get("apt") in kept
        })
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
                detectors[codec.payloadType] = (
                    keyframe_detector(codec.name) if self.kind == "video" else None
                )
        fwd = self.forwarder
        # swapped whole: the packet path reads these dicts without locks
        fwd.rtx_apt = rtx_apt
        fwd.detectors = detectors
        for ext in parameters.headerExtensions:
            if ext.uri == URI_AUDIO_LEVEL and self.kind == "audio":
                fwd.level_id = ext.id
            elif ext.uri == URI_MID:
                self.mid_ext_id = ext.id
        for encoding in parameters.encodings:
            if encoding.ssrc:
                self.ssrc = encoding.ssrc
            if encoding.rtx is not None and encoding.rtx.ssrc:
                self.rtx_ssrc = encoding.rtx.ssrc

    def pause(self) -> None:
        self.forwarder.paused = True

    def resume(self) -> None:
        if self.forwarder.paused:
            self.forwarder.paused = False
            for rewriter in self.forwarder.rewriters:
                rewriter.resync()
            self.request_keyframe()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per interval."""
        if self.kind != "video" or self.closed:
            return
        now = self.clock()
        wait = self._last_keyframe_request + self._keyframe_interval - now
        if wait <= 0:
            self._send_keyframe_request(now)
        elif self._keyframe_timer is None:
            # remember the request instead of dropping it
            loop = asyncio.get_running_loop()
            self._keyframe_timer = loop.call_later(wait, self._deferred_keyframe_request)

    def on_sender_report(self, report: rtcp.SenderReport) -> None:
        self.last_sr = (report.ntp, report.rtp_timestamp, self.clock())

    def on_remb(self, consumer_id: str, bitrate: int) -> None:
        self._remb[consumer_id] = bitrate
        self._remb_dirty = True

    def feedback(self) -> bytes:
        """Periodic RTCP to the publisher: a receiver report and aggregated REMB."""
        if self.ssrc is None:
            return b""
        fwd = self.forwarder
        lsr = dlsr = 0
        if self.last_sr is not None:
            ntp, _, arrived = self.last_sr
            lsr = (ntp >> 16) & 0xFFFFFFFF
            dlsr = int(max(self.clock() - arrived, 0.0) * 65536) & 0xFFFFFFFF
        block = rtcp.ReportBlock(self.ssrc, 0, 0, fwd.highest_sequence, 0, lsr, dlsr)
        out = rtcp.build_rr(self._rtcp_ssrc, [block])
        if self._remb and self._remb_dirty:
            # the publisher may send what the slowest subscriber can take
            out += rtcp.build_remb(self._rtcp_ssrc, min(self._remb.values()), [self.ssrc])
            self._remb_dirty = False
        return out

    def attach(self, rewriter: RtpRewriter) -> None:
        if rewriter not in self.forwarder.rewriters:
            # copy-on-write: the hot loop iterates the list it already holds
            self.forwarder.rewriters = self.forwarder.rewriters + [rewriter]

    def detach(self, rewriter: RtpRewriter, consumer_id: str) -> None:
        self._remb.pop(consumer_id, None)
        self.forwarder.rewriters = [r for r in self.forwarder.rewriters if r is not rewriter]

    def close(self) -> None:
        """Idempotent; consumers are detached by their owner (the router)."""
        if self.closed:
            return
        self.closed = True
        self.forwarder.rewriters = []
        self.forwarder.taps = []
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None

    # ------------------------------------------------------------ private

    def _deferred_keyframe_request(self) -> None:
        self._keyframe_timer = None
        if not self.closed:
            self._send_keyframe_request(self.clock())

    def _send_keyframe_request(self, now: float) -> None:
        self._last_keyframe_request = now
        if self.ssrc is None:
            return
        self.keyframe_requests_sent += 1
        self._send_rtcp(rtcp.build_pli(self._rtcp_ssrc, self.ssrc))
