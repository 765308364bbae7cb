"""The ONE place where the SFU touches aiortc's and aioice's private details.

aiortc's receiver decodes (a thread per track) and its sender encodes; the
SFU needs neither. This module swaps a few methods on *server-side*
instances only (never on the classes, so aiortc clients in the same
process are untouched):

- ``RTCRtpReceiver.receive`` / ``RTCRtpSender.send``: report the negotiated
  parameters to us instead of starting decoder threads / encoder loops;
- ``RTCDtlsTransport._handle_rtp_data`` / ``_handle_rtcp_data``: hand us
  SRTP-decrypted packets as raw bytes, before aiortc parses them;
- ``RTCDtlsTransport._tx_srtp`` / ``_rx_srtp`` + the nominated aioice pair
  (``connected_path``): what ``MediaTransport`` installs when DTLS connects, the
  egress (SRTP protect + ``sendto``) without awaiting aiortc's coroutines;
- the nominated pair's ``StunProtocol.datagram_received`` (``install_fast_ingress``):
  once connected, an SRTP/SRTCP datagram is unprotected and handed to the
  transport synchronously, skipping aioice's STUN parse attempt (a raised
  ValueError per packet), its queue, and aiortc's receive coroutines;
- ``aioice.Connection.get_component_candidates``: our own host candidates
  (port range, single port, announced IP, interface selection);
- asyncio's ``_SelectorDatagramTransport.max_size`` on our UDP sockets: 8 KiB
  per ``recvfrom`` instead of 256 KiB, which fragmented the C heap (issue 12);
- ``RTCDtlsTransport._role``: the DTLS role our answer chose, written into our
  re-offers (``pin_dtls_setup``) instead of aiortc's ``a=setup:actpass`` (issue 24);
- ``RTCDtlsTransport._role`` / ``_srtp_profiles`` before the first answer (``prefer_gcm``):
  the server side of DTLS with AEAD_AES_128_GCM first, so browsers' SRTP is GCM;
- ``RTCDtlsTransport._setup_srtp`` (``narrow_tx_window``): the outbound session keyed again
  with a 128-packet window instead of aiortc's 1,024, before any packet is protected.

``REQUIRED`` lists every private name used; ``check_compatibility()``
fails loudly when an aiortc/aioice upgrade moves one of them.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import aioice.ice
import aiortc.rtcdtlstransport
import pylibsrtp
from aioice import Candidate, Connection
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)


logger = logging.getLogger(__name__)

#: (object, attribute) pairs this module depends on; checked by tests.
REQUIRED: list[tuple[Any, str]] = [
    (RTCRtpReceiver, "receive"),
    (RTCRtpReceiver, "_RTCRtpReceiver__decoder_thread"),  # instance attr, checked on an instance
    (RTCRtpSender, "send"),
    (RTCRtpSender, "_RTCRtpSender__encoder"),  # instance attr
    (RTCRtpSender, "_ssrc"),  # instance attr
    (RTCRtpSender, "_rtx_ssrc"),  # instance attr
    (RTCRtpSender, "_stream_id"),  # instance attr
    (RTCRtpSender, "_track_id"),  # instance attr
    (RTCRtpTransceiver, "_codecs"),  # instance attr
    (RTCRtpTransceiver, "_headerExtensions"),  # instance attr
    (RTCRtpTransceiver, "_offerDirection"),  # instance attr
    (RTCDtlsTransport, "_handle_rtp_data"),
    (RTCDtlsTransport, "_handle_rtcp_data"),
    (RTCDtlsTransport, "_tx_srtp"),  # instance attr
    (RTCDtlsTransport, "_rx_srtp"),  # instance attr
    (RTCDtlsTransport, "_role"),  # instance attr
    (RTCDtlsTransport, "_srtp_profiles"),  # instance attr
    (RTCDtlsTransport, "_ssl"),  # instance attr
    (RTCDtlsTransport, "_setup_srtp"),
    (aiortc.rtcdtlstransport, "SRTP_PROFILES"),
    (Connection, "_nominated"),  # instance attr
    (Connection, "_protocols"),  # instance attr
    (Connection, "get_component_candidates"),
    (aioice.ice, "StunProtocol"),
    (aioice.ice, "get_host_addresses"),
    (aioice.ice, "candidate_foundation"),
    (aioice.ice, "candidate_priority"),
    # tune_socket: recvfrom size (missing class -> the module lacks max_size -> reported)
    (getattr(asyncio.selector_events, "_SelectorDatagramTransport", asyncio.selector_events), "max_size"),
]

_ADOPTED = "_sfu_adopted"


def check_compatibility() -> None:
    """Raise AssertionError naming every private detail that went missing."""
    missing = []
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        pc = RTCPeerConnection()
        transceiver = pc.addTransceiver("video", direction="sendonly")
        connection = transceiver.receiver.transport.transport._connection
        instances: dict[Any, Any] = {
            RTCRtpReceiver: transceiver.receiver,
            RTCRtpSender: transceiver.sender,
            RTCRtpTransceiver: transceiver,
            RTCDtlsTransport: transceiver.receiver.transport,
            Connection: connection,
        }
        for owner, name in REQUIRED:
            target = instances.get(owner, owner)
            if not hasattr(target, name) and not hasattr(owner, name):
                missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
        loop.run_until_complete(pc.close())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    if missing:
        raise AssertionError("aiortc/aioice private API changed: " + ", ".join(missing))


# ---------------------------------------------------------------- media


def adopt_transceiver(
    transceiver: RTCRtpTransceiver,
    on_receive: Callable[[RTCRtpReceiveParameters], None],
    on_send: Callable[[RTCRtpSendParameters], None],
) -> bool:
    """Replace the receiver's decode loop and the sender's encode loop of one
    server-side transceiver by parameter callbacks. Idempotent; returns True
    the first time."""
    if getattr(transceiver, _ADOPTED, False):
        return False

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        on_receive(parameters)

    async def send(parameters: RTCRtpSendParameters) -> None:
        on_send(parameters)

    # instance attributes shadow the class methods for these objects only
    transceiver.receiver.receive = receive  # type: ignore[method-assign]
    transceiver.sender.send = send  # type: ignore[method-assign]
    setattr(transceiver, _ADOPTED, True)
    return True


def is_adopted(transceiver: RTCRtpTransceiver) -> bool:
    return bool(getattr(transceiver, _ADOPTED, False))


def intercept_transport(
    dtls: RTCDtlsTransport,
    on_rtp: Callable[[bytes], None],
    on_rtcp: Callable[[bytes], None],
) -> bool:
    """Receive decrypted RTP/RTCP bytes of ``dtls`` before aiortc parses them."""
    if getattr(dtls, _ADOPTED, False):
        return False

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        on_rtp(data)

    async def handle_rtcp_data(data: bytes) -> None:
        on_rtcp(data)

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    dtls._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]
    narrow_tx_window(dtls)
    setattr(dtls, _ADOPTED, True)
    return True


#: SRTP profiles in our order of preference (OpenSSL's DTLS server picks the first the client
#: offers): AEAD_AES_128_GCM costs about half of AES_CM_128_HMAC_SHA1_80 per packet with AES-NI
#: (benchmarks/srtp_profiles.py; HMAC-SHA1 is most of the latter), AES-256 more rounds for nothing
#: a class needs; CM + HMAC stays for clients without GCM
_SRTP_PREFERENCE = (b"SRTP_AEAD_AES_128_GCM", b"SRTP_AEAD_AES_256_GCM", b"SRTP_AES128_CM_SHA1_80")


def prefer_gcm(dtls: RTCDtlsTransport) -> bool:
    """Be the DTLS server of ``dtls`` (unless the remote offer already chose) with AEAD_AES_128_GCM
    first; call between the remote offer and our answer. True when we will be the server.

    Whoever is the DTLS server picks the SRTP profile from the client's list. aiortc answers
    as the client, and Chromium as the server picks AES_CM_128_HMAC_SHA1_80 whenever the
    client offers it (libwebrtc lists GCM last, for its larger tag): every browser packet then
    paid HMAC-SHA1 at our unprotect and every forwarded one at our protect. As the server
    (``a=setup:passive`` in our answer; ``pin_dtls_setup`` keeps it in re-offers) we pick."""
    available = {p.openssl_profile: p for p in aiortc.rtcdtlstransport.SRTP_PROFILES}
    dtls._srtp_profiles = [available[name] for name in _SRTP_PREFERENCE if name in available]
    if dtls._role == "auto":
        dtls._role = "server"
    return dtls._role == "server"


#: packets of the outbound SRTP window (libsrtp's default; its least is 64). aiortc gives both
#: directions 1,024, and libsrtp shifts the whole window (a word per 32 packets) on every packet
#: it protects: at 5 rooms x 5 that shift was 3.7 % of the SFU's CPU, three quarters of it on
#: egress, where the window only bounds how old a retransmission on the media SSRC itself may be
#: (~0.5 s of a 2.5 Mbit/s stream; browsers' retransmissions use RTX, numbered afresh)
TX_SRTP_WINDOW = 128


def narrow_tx_window(dtls: RTCDtlsTransport) -> None:
    """Give ``dtls``'s outbound SRTP session a ``TX_SRTP_WINDOW`` window once DTLS is up.

    aiortc keys the sessions in ``_setup_srtp`` from the DTLS exporter, with the keys as locals;
    the exporter gives the same bytes when asked again, so the outbound session is made again
    from them right after, before ``start`` reports the transport connected: no packet has been
    protected under aiortc's session (AES-GCM must never see a nonce twice under one key with
    different data). The inbound session keeps its 1,024-packet replay window."""
    original = dtls._setup_srtp

    def setup_srtp() -> None:
        original()
        ssl = dtls._ssl
        if dtls._tx_srtp is None or ssl is None:
            return  # no profile negotiated: aiortc failed the transport
        selected = ssl.get_selected_srtp_profile()
        profile = next(p for p in dtls._srtp_profiles if p.openssl_profile == selected)
        view = ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length))
        # the server's keys come second in the exporter's output (RFC 5764 4.2), as aiortc reads them
        policy = pylibsrtp.Policy(
            key=profile.get_key_and_salt(view, 1 if dtls._role == "server" else 0),
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=profile.libsrtp_profile,
        )
        policy.allow_repeat_tx = True  # as aiortc: a NACK answered with the same bytes again
        policy.window_size = TX_SRTP_WINDOW
        dtls._tx_srtp = pylibsrtp.Session(policy)

    dtls._setup_srtp = setup_srtp  # type: ignore[method-assign]


def srtp_profile(dtls: RTCDtlsTransport) -> Optional[str]:
    """The SRTP protection profile DTLS negotiated (e.g. ``SRTP_AEAD_AES_128_GCM``), None before."""
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None or dtls.state != "connected":
        return None
    try:
        name = ssl.get_selected_srtp_profile()
    except Exception:  # noqa: BLE001 - pyOpenSSL raises its own errors on a closed connection
        return None
    return name.decode() if name else None


_FAST = "_sfu_fast_ingress"


class Ingress(Protocol):
    """What the fast ingress delivers to (``MediaTransport``): ``rx`` is the SRTP context
    while DTLS is connected, None otherwise (then every datagram takes aioice's path)."""

    rx: Any

    def receive_rtp(self, data: bytes) -> None: ...

    def receive_rtcp(self, data: bytes) -> None: ...


def install_fast_ingress(protocol: Any, ingress: Ingress) -> bool:
    """Deliver SRTP/SRTCP arriving on ``protocol`` (the nominated pair's aioice
    ``StunProtocol``) to ``ingress``: unprotect + call, synchronously.

    Everything else (STUN, DTLS, packets before the handshake) takes aioice's
    and aiortc's normal path. Idempotent; False if not applicable.
    """
    if type(protocol) is not aioice.ice.StunProtocol or getattr(protocol, _FAST, False):
        return False
    original = protocol.datagram_received
    on_rtp = ingress.receive_rtp
    on_rtcp = ingress.receive_rtcp

    def datagram_received(data: bytes, addr: Any) -> None:
        # RTP/RTCP first byte is 128..191 (RFC 7983); STUN is 0..3, DTLS 20..63
        if len(data) > 11 and 127 < data[0] < 192:
            ctx = ingress.rx
            if ctx is not None:
                try:
                    if 191 < data[1] < 209:  # RTCP packet types (as aiortc's is_rtcp)
                        clear = ctx.unprotect_rtcp(data)
                        if clear is not None:  # None: replayed / not authentic, dropped as aiortc does
                            on_rtcp(clear)
                    else:
                        clear = ctx.unprotect(data)
                        if clear is not None:
                            on_rtp(clear)
                except Exception:  # noqa: BLE001 - one bad packet never breaks the socket
                    logger.exception("SFU ingress handler failed")
                return
        original(data, addr)

    protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]
    setattr(protocol, _FAST, True)
    return True


@dataclass(frozen=True)
class ConnectedPath:
    """What a DTLS transport negotiated once connected: both SRTP sessions and where packets go.

    ``socket`` is the datagram transport to write to directly (our ``MediaSocket``, or another
    UDP transport), None when the local candidate is relayed (TURN): then ``relay_send`` adds
    the TURN framing. ``protocol`` is the nominated pair's aioice protocol (for the fast ingress)."""

    tx: pylibsrtp.Session
    rx: pylibsrtp.Session
    protocol: Any
    remote_addr: tuple[str, int]
    socket: Any
    relay_send: Optional[Callable[[bytes, Any], None]]


def dtls_connected(dtls: RTCDtlsTransport) -> bool:
    return dtls.state == "connected"


def on_dtls_state(dtls: RTCDtlsTransport, callback: Callable[[bool], None]) -> None:
    """Call ``callback(connected)`` on each DTLS state change."""
    dtls.on("statechange", lambda: callback(dtls.state == "connected"))


_SETUP_OF_ROLE = {"client": "active", "server": "passive"}


def pin_dtls_setup(pc: RTCPeerConnection, sdp: str) -> str:
    """``sdp`` (our re-offer) with ``a=setup:actpass`` replaced by the DTLS role already chosen.

    aiortc writes ``actpass`` in every offer and takes whatever role the answer then picks,
    even for the transport whose role its first answer fixed (RFC 8842 section 5.3 and JSEP
    5.2.2: a subsequent offer states the existing role). Firefox answers such a re-offer with
    ``a=setup:active`` but keeps the DTLS server role of its transport (it waits for our
    ClientHello); aiortc read ``active`` as "be the server", and when the re-offer (new
    subscriptions, right after the first answer) was answered before ICE completed, aiortc
    started DTLS as a server too: both sides waited for a ClientHello forever, the peer
    connection stayed ``connecting`` (issue 24, 2 of 5 Firefox joins). Pinned, the answer must
    keep the role (``passive`` to our ``active``) and aiortc stays the client."""
    roles = {getattr(dtls, "_role", "auto") for dtls in dtls_transports(pc)}
    if len(roles) != 1:
        return sdp  # no transport, or several with different roles (never with max-bundle)
    setup = _SETUP_OF_ROLE.get(roles.pop())
    if setup is None:
        return sdp  # not negotiated yet (a first offer): actpass is right
    return sdp.replace("a=setup:actpass", f"a=setup:{setup}")


def connected_path(dtls: RTCDtlsTransport) -> Optional[ConnectedPath]:
    """The SRTP sessions aiortc keyed and the nominated ICE pair, or None before DTLS is up."""
    tx, rx = dtls._tx_srtp, dtls._rx_srtp
    if dtls.state != "connected" or tx is None or rx is None:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return None
    protocol = pair.protocol
    transport = getattr(protocol, "transport", None)
    if type(protocol) is aioice.ice.StunProtocol and transport is not None:
        mux = getattr(transport, "_mux", None)
        if mux is not None and getattr(mux, "transport", None) is not None:
            # sfu.transport.ice's shared port: the mux routes by source address; register ours once,
            # then write straight to the shared socket
            mux.learn(pair.remote_addr, protocol)
            transport = mux.transport
        return ConnectedPath(tx, rx, protocol, pair.remote_addr, transport, None)

    # relayed (TURN) or otherwise wrapped local candidate: go through its own coroutine,
    # which adds the TURN framing
    def relay_send(data: bytes, addr: Any) -> None:
        asyncio.ensure_future(protocol.send_data(data, addr))

    return ConnectedPath(tx, rx, protocol, pair.remote_addr, None, relay_send)


#: kernel socket buffers of the SFU's UDP sockets (SO_RCVBUF / SO_SNDBUF): the
#: Linux default (~208 KB) holds ~150 video packets, i.e. a few ms of a busy
#: process's ingress: one event-loop stall overflows it. The kernel caps these
#: at net.core.rmem_max / wmem_max (raise those on a media server).
SOCKET_RCVBUF = 4 << 20
SOCKET_SNDBUF = 2 << 20


def raw_socket(transport: Any) -> Any:
    """The real ``socket.socket`` under an asyncio selector datagram transport
    (``get_extra_info("socket")`` only gives a wrapper that refuses sendto), or
    None for anything else (TURN, our UDP mux's per-connection view, proactor)."""
    sock = getattr(transport, "_sock", None)
    return sock if sock is not None and hasattr(sock, "sendto") else None


#: bytes asked of ``recvfrom`` per datagram by asyncio's selector transports
#: (``_SelectorDatagramTransport.max_size``, 256 KiB by default). CPython allocates
#: that much for every datagram and shrinks it to the datagram's size: glibc must
#: find 256 KiB of contiguous free heap per packet, and the NACK histories' packets
#: (alive ~15 s) scattered through the heap break up such holes, so the heap kept
#: growing from its top while the live allocations stayed flat (2 rooms x 5: RSS
#: +2 MB/min; benchmarks/sfu_soak.py, sfu/heap.py, issue 12). WebRTC datagrams stay
#: under the path MTU (~1200-1500 bytes on the wire, DTLS flights fragmented to it).
RECV_MAX_SIZE = 8192


def tune_socket(transport: Any, rcvbuf: int = SOCKET_RCVBUF, sndbuf: int = SOCKET_SNDBUF) -> bool:
    """Raise a UDP transport's kernel buffers and cap its per-datagram receive
    buffer at RECV_MAX_SIZE (best effort, idempotent)."""
    inner = getattr(getattr(transport, "_mux", None), "transport", None)  # sfu.transport.ice's shared-port view
    if inner is not None:
        transport = inner
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or getattr(transport, "_sfu_tuned", False):
        return False
    if isinstance(getattr(transport, "max_size", None), int):
        # asyncio's selector loop only; uvloop reads into one buffer per loop
        transport.max_size = RECV_MAX_SIZE
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    except OSError:
        return False
    try:
        transport._sfu_tuned = True
    except AttributeError:
        pass
    return True


def dtls_transports(pc: RTCPeerConnection) -> list[RTCDtlsTransport]:
    seen: list[RTCDtlsTransport] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls not in seen:
            seen.append(dtls)
    return seen


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """(media ssrc, rtx ssrc) the sender announces in SDP."""
    return sender._ssrc, sender._rtx_ssrc


def rtcp_ssrc(transceiver: RTCRtpTransceiver) -> int:
    """The SSRC aiortc uses for this transceiver's receiver reports/feedback."""
    return transceiver.sender._ssrc


def set_sender_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Set what ``a=msid`` announces for a trackless server-side sender."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)


Negotiated = tuple[list[RTCRtpCodecParameters], list[RTCRtpHeaderExtensionParameters]]


def negotiated_state(pc: RTCPeerConnection) -> dict[RTCRtpTransceiver, Negotiated]:
    """Each negotiated transceiver's codecs and header extensions, to put back after an offer."""
    return {
        t: (list(t._codecs), list(t._headerExtensions)) for t in pc.getTransceivers() if t.currentDirection is not None
    }


def restore_negotiated(state: dict[RTCRtpTransceiver, Negotiated]) -> None:
    """Undo what ``createOffer`` did to negotiated transceivers: it resets their codecs and
    header extensions to aiortc's own numbering (VP8 97, RTX 98, its extension ids), and
    the connect step after ``setLocalDescription`` hands those to the receivers and senders
    while the client still uses what was negotiated, until it answers (the answer sets them
    again). Left as they were, the SFU took a publisher's RTX on 97 for VP8 in that window
    and forwarded a retransmission with the RTX stream's sequence numbers: libsrtp's window
    toward every subscriber jumped ahead and refused the rest of that camera as too old."""
    for transceiver, (codecs, extensions) in state.items():
        transceiver._codecs = list(codecs)
        transceiver._headerExtensions = list(extensions)


def offered_direction(transceiver: RTCRtpTransceiver) -> Optional[str]:
    """Our side's direction as the remote offer allows it (reverse of the remote's)."""
    return getattr(transceiver, "_offerDirection", None)


def receiver_has_decoder(receiver: RTCRtpReceiver) -> bool:
    """True if aiortc started a decoder thread for this receiver."""
    return receiver._RTCRtpReceiver__decoder_thread is not None  # type: ignore[attr-defined]


def sender_has_encoder(sender: RTCRtpSender) -> bool:
    """True if aiortc instantiated an encoder for this sender."""
    return sender._RTCRtpSender__encoder is not None  # type: ignore[attr-defined]


# ---------------------------------------------------------------- ICE


HostGatherer = Callable[[Connection, int], Awaitable[list[Candidate]]]


def ice_connections(pc: RTCPeerConnection) -> list[Connection]:
    return [dtls.transport._connection for dtls in dtls_transports(pc)]


def install_host_gatherer(connection: Connection, gather: HostGatherer) -> None:
    """Make ``connection`` gather its host candidates with ``gather`` (our
    sockets) while keeping aioice's STUN/TURN candidate logic."""
    if getattr(connection, _ADOPTED, False):
        return
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str], timeout: int = 5) -> list[Candidate]:
        candidates = await gather(connection, component)
        if connection.turn_server is not None:
            candidates += await original(component=component, addresses=[], timeout=timeout)
        return candidates

    connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]
    setattr(connection, _ADOPTED, True)


def stun_protocol(connection: Connection) -> asyncio.DatagramProtocol:
    """A new aioice protocol object delivering datagrams to ``connection``."""
    return aioice.ice.StunProtocol(connection)


def register_host_protocol(
    connection: Connection,
    protocol: Any,
    component: int,
    bound: tuple[str, int],
    announced_ip: Optional[str],
) -> Candidate:
    """Attach a bound protocol to ``connection`` as a host candidate."""
    host = announced_ip or bound[0]
    protocol.local_candidate = Candidate(
        foundation=aioice.ice.candidate_foundation("host", "udp", host),  # type: ignore[attr-defined]
        component=component,
        transport="udp",
        priority=aioice.ice.candidate_priority(component, "host"),  # type: ignore[attr-defined]
        host=host,
        port=bound[1],
        type="host",
    )
    connection._protocols.append(protocol)
    tune_socket(getattr(protocol, "transport", None))
    candidate: Candidate = protocol.local_candidate
    return candidate


def host_addresses(use_ipv6: bool) -> list[str]:
    return list(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=use_ipv6))


def local_username(connection: Connection) -> str:
    return connection.local_username
