"""MediaTransport: one peer's media transport, between its socket and its producers' forwarders.

As mediasoup's ``WebRtcTransport`` sits between a Router and its Producers/Consumers, this owns,
for one peer connection: the DTLS state, both SRTP directions, the SSRC -> forwarder routes, and
the outgoing sink. All of it is installed together when DTLS connects (and dropped when it stops
being connected), so a packet walks one way:

    socket -> ingress (rx SRTP, TWCC arrival, route; in C) -> forwarder -> rewriters
    rewriter -> ``send`` (this transport) -> batch sink (tx SRTP in C, sendmmsg) -> socket

aiortc/aioice private details stay in ``aiortc_bridge``; this module uses only what it returns.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterable
from typing import Any, Optional

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport

from . import aiortc_bridge as bridge
from . import fastio
from .media_socket import MediaSocket

logger = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")

RtpRoute = Callable[[bytes], None]


def direct_ingress() -> bool:
    """Whether our sockets deliver registered peers' SRTP themselves (default), or every
    datagram takes the protocol's path (``PEERLEARN_SFU_DIRECT_INGRESS=0``: the A/B switch the
    benchmarks use to compare the two ingress paths in one build)."""
    return os.environ.get("PEERLEARN_SFU_DIRECT_INGRESS", "1").lower() not in ("0", "false", "no", "off")


class DatagramEgress:
    """SRTP protect + ``sendto`` on a plain datagram transport, synchronously (the path when the
    local candidate is not on our ``MediaSocket``: another UDP transport, or TURN).

    Egress calls the raw socket's ``sendto`` (non-blocking) instead of asyncio's
    ``DatagramTransport.sendto`` wrapper; when the kernel buffer is full (EAGAIN) the packet goes
    to the transport, which queues it and writes when the socket is writable, and later packets
    follow through the transport until its queue is empty, so nothing is reordered.
    """

    __slots__ = ("_protect", "_protect_rtcp", "_sendto", "_raw", "_transport", "_addr", "errors", "queued")

    @property
    def destination(self) -> Any:
        return self._addr

    def __init__(
        self,
        protect: Callable[[bytes], bytes],
        protect_rtcp: Callable[[bytes], bytes],
        transport: Any,
        addr: Any,
        relay_send: Optional[Callable[[bytes, Any], None]] = None,
    ) -> None:
        self._protect = protect
        self._protect_rtcp = protect_rtcp
        self._transport = transport
        self._addr = addr
        sock = bridge.raw_socket(transport) if transport is not None else None
        self._raw: Optional[Callable[[bytes, Any], Any]] = sock.sendto if sock is not None else None
        sendto = relay_send or self._raw or (transport.sendto if transport is not None else None)
        assert sendto is not None, "a datagram egress needs a transport or a relay"
        self._sendto: Callable[[bytes, Any], Any] = sendto
        self.errors = 0
        self.queued = 0  # packets that met a full kernel buffer

    def send(self, data: bytes, rtcp: bool = False) -> None:
        try:
            packet = self._protect_rtcp(data) if rtcp else self._protect(data)
            self._sendto(packet, self._addr)
        except (BlockingIOError, InterruptedError):
            self._queue(packet)
        except (pylibsrtp.Error, OSError, AttributeError, RuntimeError):
            self.errors += 1

    def _queue(self, packet: bytes) -> None:
        self.queued += 1
        transport = self._transport
        if transport is None or self._raw is None:
            self.errors += 1
            return
        try:
            transport.sendto(packet, self._addr)
        except (OSError, RuntimeError, AttributeError):
            self.errors += 1
            return
        self._sendto = self._via_transport

    def _via_transport(self, packet: bytes, addr: Any) -> None:
        transport = self._transport
        transport.sendto(packet, addr)
        if not transport.get_write_buffer_size() and self._raw is not None:
            self._sendto = self._raw


class MediaTransport:
    """One peer connection's media transport: routes, SRTP, egress; see the module docstring.

    ``on_rtcp`` gets every decrypted RTCP compound packet; ``on_unknown_rtp`` every RTP packet
    whose SSRC has no route yet (the peer learns simulcast layers and streams without ``a=ssrc``
    from them, then calls ``route``). Packets sent before DTLS is connected are dropped, as on
    the wire.
    """

    def __init__(self, *, on_rtcp: Callable[[bytes], None], on_unknown_rtp: Callable[[bytes], None]) -> None:
        self._on_rtcp = on_rtcp
        self._on_unknown_rtp = on_unknown_rtp
        self._routes: dict[int, RtpRoute] = {}
        self._dtls: Optional[RTCDtlsTransport] = None
        self._egress: Optional[DatagramEgress] = None
        #: the rx SRTP context while DTLS is connected (the fast ingress reads it per datagram)
        self.rx: Any = None
        #: on our own socket (``MediaSocket``), its ``BatchSink`` for the tx context while connected:
        #: SRTP in C into the turn's ``sendmmsg`` batch (the native rewriter writes to it directly)
        self.batch_sink: Any = None
        self.connected = False
        self._errors = 0
        #: sees every decrypted RTP packet before it is routed (TWCC feedback notes its arrival)
        self.observe_rtp: Optional[RtpRoute] = None
        self._arrivals: Any = None
        #: while connected on our own socket: (its ``Ingress``, the peer's address, our route there)
        self._direct: Optional[tuple[Any, tuple[Any, ...], Any]] = None

    # ------------------------------------------------------------ public

    @property
    def bound(self) -> bool:
        """A DTLS transport is attached (the peer connection has negotiated once)."""
        return self._dtls is not None

    @property
    def errors(self) -> int:
        egress = self._egress
        return self._errors + (egress.errors if egress is not None else 0)

    def bind(self, dtls: RTCDtlsTransport) -> bool:
        """Take the decrypted packets of ``dtls`` and follow its state. The first transport is
        ours; another one (no BUNDLE: never with our offers) only delivers to the same routes.
        Idempotent; True when ``dtls`` became this transport's."""
        if not bridge.intercept_transport(dtls, self.receive_rtp, self.receive_rtcp):
            return False
        if self._dtls is not None:
            return False
        # before our first answer: we pick the SRTP profile (GCM), not the browser
        bridge.prefer_gcm(dtls)
        self._dtls = dtls
        bridge.on_dtls_state(dtls, self._state_changed)
        self._state_changed(bridge.dtls_connected(dtls))
        return True

    @property
    def arrivals(self) -> Any:
        """The TWCC arrival log (``sfu.rtp.arrivals``) every RTP packet is noted in, or None."""
        return self._arrivals

    @arrivals.setter
    def arrivals(self, log: Any) -> None:
        self._arrivals = log
        self.observe_rtp = log.on_rtp if log is not None else None
        if self._direct is not None:
            self._direct[2].arrivals = log

    @property
    def srtp_profile(self) -> Optional[str]:
        """What DTLS negotiated for SRTP (``SRTP_AEAD_AES_128_GCM`` with browsers), None before."""
        return bridge.srtp_profile(self._dtls) if self._dtls is not None else None

    @property
    def direct_packets(self) -> int:
        """RTP packets our socket's ingress delivered straight to the routes since DTLS connected."""
        return self._direct[2].packets if self._direct is not None else 0

    def route(self, ssrc: int, target: RtpRoute) -> None:
        """RTP with ``ssrc`` goes to ``target`` (a forwarder's ``on_rtp``)."""
        self._routes[ssrc] = target

    def unroute(self, owners: Iterable[object]) -> None:
        """Drop every route to a method of one of ``owners`` (a closed producer's forwarders)."""
        gone = {id(owner) for owner in owners}
        for ssrc, target in list(self._routes.items()):
            if id(getattr(target, "__self__", None)) in gone:
                del self._routes[ssrc]

    def receive_rtp(self, data: bytes) -> None:
        """A decrypted RTP packet from the peer: to its producer's forwarder."""
        if len(data) < 12:
            return
        observe = self.observe_rtp
        if observe is not None:
            observe(data)
        target = self._routes.get(_SSRC.unpack_from(data, 8)[0])
        if target is not None:
            target(data)
        else:
            self._on_unknown_rtp(data)

    def receive_rtcp(self, data: bytes) -> None:
        self._on_rtcp(data)

    def send(self, packet: bytes) -> None:
        """An RTP packet to the peer (``RtpSink``: what consumers' rewriters send to)."""
        sink = self.batch_sink
        if sink is not None:
            sink.send(packet)
            return
        egress = self._egress
        if egress is None:
            if not self._connect():
                return
            self.send(packet)
            return
        egress.send(packet)

    def send_rtcp(self, packet: bytes) -> None:
        sink = self.batch_sink
        if sink is not None:
            sink.send(packet, True)
            return
        egress = self._egress
        if egress is None:
            if not self._connect():
                return
            self.send_rtcp(packet)
            return
        egress.send(packet, True)

    def repath(self) -> bool:
        """The ICE pair under the DTLS session changed (an ICE restart nominated a new one, the
        page's new candidates have new ports): send to it from now on. Same SRTP sessions.
        True when the egress moved."""
        dtls = self._dtls
        if not self.connected or dtls is None:
            return False
        path = bridge.connected_path(dtls)
        egress = self._egress
        if path is None or egress is None or egress.destination == path.remote_addr:
            return False
        logger.info("media path moves to %s", path.remote_addr)
        self._disconnect()
        return self._connect()

    # ------------------------------------------------------------ private

    def _state_changed(self, connected: bool) -> None:
        if connected:
            self._connect()
        else:
            self._disconnect()

    def _connect(self) -> bool:
        """Install the routes' delivery and the egress together: both SRTP contexts, the sink
        and the fast ingress. False while DTLS is not connected (or no pair is nominated)."""
        dtls = self._dtls
        if self.connected or dtls is None:
            return self.connected
        path = bridge.connected_path(dtls)
        if path is None:
            return False
        self._egress = DatagramEgress(
            path.tx.protect, path.tx.protect_rtcp, path.socket, path.remote_addr, path.relay_send
        )
        if isinstance(path.socket, MediaSocket):
            try:
                dest = fastio.Destination(path.remote_addr)
            except ValueError:
                pass  # not an IP literal: the plain egress above
            else:
                self.batch_sink = path.socket.sink(fastio.SrtpContext(path.tx), dest)
        self.rx = fastio.SrtpContext(path.rx)
        self.connected = True
        bridge.install_fast_ingress(path.protocol, self)
        if isinstance(path.socket, MediaSocket) and direct_ingress():
            self._register(path.socket, path.remote_addr)
        return True

    def _register(self, sock: MediaSocket, addr: tuple[Any, ...]) -> None:
        """Our socket takes this peer's SRTP from ``addr`` straight to the routes (in C with the
        native module): the same steps as ``receive_rtp``/``receive_rtcp``, no Python frame."""
        route = fastio.IngressRoute(self.rx, self._routes, self._on_unknown_rtp, self._on_rtcp, self._arrivals)
        try:
            sock.ingress.add(addr, route)
        except ValueError:
            return  # not an IP literal: the protocol's path (the fast ingress above)
        self._direct = (sock.ingress, addr, route)

    def _disconnect(self) -> None:
        if self._egress is not None:
            self._errors += self._egress.errors
        self.connected = False
        if self._direct is not None:
            ingress, addr, route = self._direct
            ingress.remove(addr, route)
            self._direct = None
        self.rx = None
        self.batch_sink = None
        self._egress = None
