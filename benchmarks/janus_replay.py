"""The replay participant through Janus's VideoRoom: two peer connections instead of one.

Janus wants a participant to publish on one peer connection (our offer, Janus answers) and to
receive the room's other feeds on another (one multistream subscription: Janus offers, we
answer); ``benchmarks/janus_peer.py`` ``join_janus`` drives that signaling, first the
publisher (``pcs[0]``), then the subscriber (``pcs[1]``). Everything else is the replay
participant's (``benchmarks/replay_participant.py``), so both SFUs see the same load and are
counted the same way:

- the publisher replays the same pre-packetized VP8 + Opus through its ``MediaTransport``
  (SRTP in C, ``sendmmsg``), answers Janus's PLIs and NACKs, sends sender reports;
- the subscriber's SRTP arrives on the SAME socket (the participant's ``CountingMux``; Janus
  gives each handle its own port, so the mux tells the two connections apart by source
  address after ICE) and is counted per SSRC in C without decrypting; the samples are
  decrypted by the subscriber connection's own native ingress (its keys, not the
  publisher's), and its receiver reports leave on that connection.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from benchmarks.replay_participant import ReplayParticipant
from sfu.transport import aiortc_bridge as bridge
from sfu.transport.media_transport import MediaTransport


class JanusReplayParticipant(ReplayParticipant):
    """A replay participant publishing on ``pcs[0]`` and subscribing on ``pcs[1]`` (Janus)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the subscriber connection's transport and ICE protocol (the publisher's are ``writer``/``protocol``)
        self.sub_writer: Optional[MediaTransport] = None
        self.sub_protocol: Any = None
        self._sub_rtcp_ssrc = 0

    @property
    def subscriber_pc(self) -> Any:
        return self.pcs[1] if len(self.pcs) > 1 else None

    def hook(self, pc: Any) -> None:
        if pc is not self.subscriber_pc:
            super().hook(pc)
            return
        # before aiortc gathers: the subscriber's host candidate is our socket too
        for connection in bridge.ice_connections(pc):
            bridge.install_host_gatherer(connection, self._gather_subscriber)
        for transceiver in pc.getTransceivers():
            bridge.adopt_transceiver(transceiver, self._on_receive, functools.partial(self._on_send, transceiver))
            if not self._sub_rtcp_ssrc:
                self._sub_rtcp_ssrc = bridge.rtcp_ssrc(transceiver)
        if self.sub_writer is None:
            # Janus's sender reports to a subscriber are not needed here; decrypted samples are
            self.sub_writer = MediaTransport(on_rtcp=lambda data: None, on_unknown_rtp=self._on_clear_rtp)
        for dtls in bridge.dtls_transports(pc):
            self.sub_writer.bind(dtls)

    def learn_sdp(self, sdp: str, publishers: Optional[list[str]] = None) -> None:
        super().learn_sdp(sdp, publishers)
        # abs-send-time as a subscriber reads it is the publisher's own stamp through Janus (Janus
        # does not restamp it on arrival as our SFU does): no SFU-ingress latency from it
        self.abs_id = 0

    def decrypt_sample(self, data: bytes, addr: Any, arrival: Optional[float] = None) -> None:
        """As the replay participant's, with the subscriber connection's keys."""
        if self.sub_protocol is not None:
            self.sampled += 1
            self._arrival = arrival
            try:
                self.sub_protocol.datagram_received(data, addr)
            finally:
                self._arrival = None

    def reports(self, now: float) -> None:
        """Sender reports on the publisher connection, receiver reports on the subscriber's."""
        if self.writer is not None:
            sr = self.sender_reports()
            if sr:
                self.writer.send_rtcp(sr)
        if self.sub_writer is not None and self._sub_rtcp_ssrc:
            rr = self.receiver_reports(self._sub_rtcp_ssrc)
            if rr:
                self.sub_writer.send_rtcp(rr)

    async def close(self) -> None:
        await super().close()
        if self.sub_protocol is not None:
            self.mux.detach(self.sub_protocol)

    async def _gather_subscriber(self, connection: Any, component: int) -> list[Any]:
        protocol = bridge.stun_protocol(connection)
        self.mux.attach(protocol, bridge.local_username(connection))
        self.sub_protocol = protocol
        name = self.mux.sockname
        return [bridge.register_host_protocol(connection, protocol, component, (name[0], name[1]), None)]
