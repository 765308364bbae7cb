"""A load-test participant whose media never goes through aiortc (``sfu_load.py --generator replay``).

It joins like any client (room token, ``/ws/room/{id}``, one max-bundle peer
connection, aiortc's ICE and DTLS), but its peer connection is driven the way
the server drives its own, through ``sfu.transport.aiortc_bridge``: aiortc starts no
encoder, decoder, RTP or RTCP loop (``adopt_transceiver``); RTCP arrives
decrypted in C (``install_fast_ingress``); RTP leaves through the SFU's egress
transport (``MediaTransport``: SRTP in C into the socket's ``sendmmsg`` batch).
What it publishes is replayed by ``benchmarks/rtp_replay.py``.

Its ICE host candidate is on a ``CountingMux``: an ``sfu.transport.ice.UdpMux`` (STUN by
ufrag, DTLS/SRTCP by source address) over an ``sfu.transport.media_socket.MediaSocket``
(which keeps the sending) whose reads are the mux's own: one ``recvmmsg`` per
wakeup, SRTP counted per SSRC from the header (in clear in SRTP) without
decrypting, in C (``benchmarks/_rtp_count.pyx``; a Python twin when it is not
built), without a Python object per datagram: packets, bytes, highest sequence
number (loss = gaps), frames (marker bit). 1 video packet in ``sample_mask + 1``
(and every packet of a stream until its first keyframe completed) goes to its
participant's native ingress to be decrypted: the SRTP tag proves it authentic,
its VP8 picture id gives the latency the SFU added (the frame's send time, same
clock), and the payload must be byte-equal to a packet of that frame.

Each participant has its own socket by default: the server's one shared port
tells peers apart by their source address. Waking up for every arrival on
every socket costs more than the packets (a socket holds 1-3 datagrams per
wakeup), so only ``timed`` participants' sockets are read on arrival (their
samples measure latency); the others are read once per replay tick, all in one
wakeup (their samples check validity only: a packet may wait up to a tick in
the socket). A mux can also carry many participants (``--generator-sockets N``:
reads in batches of up to 64), against a server that gives each peer its own
port.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Optional

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy

from benchmarks.aiortc_participants import Bench, Participant
from benchmarks.rtp_replay import NTP_EPOCH, RING, OutStream, Replayer, vp8_picture_id
from benchmarks.rtp_wire import Stream, find_abs_send_time, rtp_payload_offset, vp8_keyframe_start
from sfu.transport import aiortc_bridge as bridge
from sfu.transport import fastio
from sfu.rtp import rtcp
from sfu.transport.ice import UdpMux
from sfu.transport.media_socket import open_media_socket
from sfu.transport.media_transport import MediaTransport

try:  # the subscribers' counting in C (setup.py builds it); the Python loop below is its twin
    from benchmarks import _rtp_count  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - a build without Cython
    _rtp_count = None

logger = logging.getLogger(__name__)

#: receive buffer of a shared socket: SO_RCVBUFFORCE (root) goes past net.core.rmem_max
MUX_RCVBUF = 32 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: kernel receive timestamps on each datagram (Linux; Python's socket module lacks the name)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class HeldTrack(MediaStreamTrack):
    """A track aiortc never reads (its sender is adopted): it gives the m-line its kind and msid."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.Event().wait()  # never: nothing reads it


class InStream(Stream):
    """A received stream, with who receives it and where its payload came from (the sampled checks)."""

    __slots__ = ("video", "owner", "source")

    def __init__(
        self, ssrc: int, kind: str, publisher: str, owner: ReplayParticipant, source: Optional[OutStream]
    ) -> None:
        super().__init__(ssrc, kind, publisher)
        self.video = kind == "video"
        self.owner = owner
        self.source = source


class CountingMux(UdpMux):
    """``sfu.transport.ice.UdpMux`` whose socket is read by ``reader``: SRTP counted inline, everything else
    routed as the mux routes it (SSRCs are random 32-bit values the server picks per consumer:
    one table for every participant on this socket)."""

    def __init__(self, sample_mask: int, native: bool = True) -> None:
        super().__init__()
        self.sample_mask = sample_mask
        self.native = native and _rtp_count is not None
        self.streams: dict[bytes, InStream] = {}
        #: ssrc -> the participant whose offer announced it
        self.announced: dict[int, ReplayParticipant] = {}
        self.unknown = 0
        self.reads = 0
        self.datagrams = 0

    def reader(self, fd: int, batch: int) -> Callable[[], None]:
        """What reads the socket (on each wakeup, or once per tick): ``recvmmsg`` of up to ``batch``
        until it is drained, RTP counted from the clear header without a call per datagram."""
        if self.native:
            return self._native_reader(fd, batch)
        recv = fastio.Receiver().recv
        streams = self.streams
        route = super().datagram_received  # STUN by ufrag, DTLS/SRTCP by source address
        new_stream = self._new_stream
        mask = self.sample_mask
        counter = 0

        def read() -> None:
            nonlocal counter
            datagrams = recv(fd, batch)
            while datagrams:
                self.reads += 1
                self.datagrams += len(datagrams)
                more = len(datagrams) == batch
                for data, addr in datagrams:
                    # RTP, not RTCP (payload types 64-95 with the marker bit are RTCP's)
                    if 127 < data[0] < 192 and not 191 < data[1] < 224 and len(data) > 11:
                        st = streams.get(data[8:12])
                        if st is None:
                            st = new_stream(data)
                            if st is None:
                                continue
                        seq = (data[2] << 8) | data[3]
                        st.packets += 1
                        st.octets += len(data)
                        d = (seq - st.highest) & 0xFFFF
                        if d < 0x8000:
                            st.highest += d
                        if st.video:
                            if data[1] & 0x80:
                                st.frames += 1
                            counter += 1
                            if not counter & mask or st.first_frame is None:
                                st.owner.decrypt_sample(data, addr)
                        continue
                    try:
                        route(data, addr)
                    except Exception:  # noqa: BLE001 - one bad datagram never stops the socket
                        logger.exception("generator socket: datagram handler failed")
                datagrams = recv(fd, batch) if more else None

        return read

    def _native_reader(self, fd: int, batch: int) -> Callable[[], None]:
        """``reader`` with the counting in C: Python sees only what is not counted RTP and the samples."""
        counter = _rtp_count.RtpCounter(self.sample_mask)
        streams = self.streams
        route = super().datagram_received
        new_stream = self._new_stream
        sample, unknown = _rtp_count.SAMPLE, _rtp_count.UNKNOWN
        offset = 0.0  # CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed per read

        def handle(kind: int, data: bytes, addr: Any, arrival: float) -> None:
            at = arrival - offset if arrival else None  # the kernel's stamp on the monotonic clock
            try:
                if kind == sample:
                    streams[data[8:12]].owner.decrypt_sample(data, addr, at)
                elif kind == unknown:
                    st = new_stream(data)
                    if st is not None:
                        counter.add(st.ssrc, st)
                        if counter.count(data):
                            st.owner.decrypt_sample(data, addr, at)
                else:
                    route(data, addr)
            except Exception:  # noqa: BLE001 - one bad datagram never stops the socket
                logger.exception("generator socket: datagram handler failed")

        def read() -> None:
            nonlocal offset
            offset = time.time() - time.monotonic()
            counter.read(fd, batch, handle)
            self.reads = counter.reads
            self.datagrams = counter.datagrams

        return read

    def _new_stream(self, data: bytes) -> Optional[InStream]:
        ssrc = int.from_bytes(data[8:12], "big")
        owner = self.announced.get(ssrc)
        st = owner.new_stream(ssrc, data) if owner is not None else None
        if st is None:
            self.unknown += 1
            return None
        self.streams[data[8:12]] = st
        return st


def default_address() -> str:
    """Where the generator's sockets bind: the first host address aioice would gather, as aiortc's clients do."""
    found = bridge.host_addresses(False)
    return found[0] if found else "127.0.0.1"


def open_mux(
    loop: asyncio.AbstractEventLoop,
    address: str,
    sample_mask: int,
    *,
    shared: bool,
    poll: Optional[Callable[[Callable[[], None]], None]] = None,
    timed: bool = False,
) -> CountingMux:
    """A ``CountingMux`` on a new socket bound to ``address`` (any free port); ``shared``: for many
    participants (reads of up to 64 datagrams), else for one (up to 16: it rarely holds more).
    ``poll``: the socket is read by what ``poll`` registers (once per tick) instead of on every arrival:
    one wakeup per tick for all such sockets instead of one per few datagrams each. ``timed``: its
    samples measure latency: with the C counter the kernel stamps each arrival (SO_TIMESTAMPNS) and
    the socket is still polled; the Python twin reads it on arrival instead."""
    mux = CountingMux(sample_mask)
    transport = open_media_socket(loop, mux, address, 0)
    sock = transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, MUX_RCVBUF)
    except OSError:
        pass  # not root: net.core.rmem_max is the limit
    if mux.native:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # the MediaSocket keeps sending (batches, backlog); reads are the mux's own
    loop.remove_reader(sock.fileno())
    read = mux.reader(sock.fileno(), 64 if shared else 16)
    if poll is not None and (mux.native or not timed):
        poll(read)
    else:
        loop.add_reader(sock.fileno(), read)
    return mux


class ReplayParticipant(Participant):
    """A participant on the native media path (see the module docstring)."""

    def __init__(
        self, bench: Bench, replayer: Replayer, mux: CountingMux, room: int, index: int, *, timed: bool = True
    ) -> None:
        super().__init__(bench, room, index, decode=False)
        self.replayer = replayer
        self.mux = mux
        #: its socket is read as packets arrive: its samples measure latency (a polled one's would
        #: include up to a tick of waiting in its own socket)
        self.timed = timed
        self.out: dict[str, OutStream] = {}
        #: its media transport, as the server's peers have one (ingress and egress installed on DTLS connect)
        self.writer: Optional[MediaTransport] = None
        self.protocol: Any = None
        self.dtls: Any = None
        self.attached = False
        self.next_due = float("inf")
        self.next_rtcp = 0.0
        self.sampled = 0  # packets handed to the native ingress to decrypt
        self._arrival: Optional[float] = None  # the sample being decrypted reached us then (monotonic)
        self.sample_clear = 0  # ... that came back decrypted (authentic)
        self.sample_matched = 0  # ... whose picture id was found among the frames sent
        self.payload_mismatch = 0  # decrypted payload not byte-equal to what was sent with that id
        self._rr_last: dict[int, tuple[int, int]] = {}

    @property
    def socket(self) -> Any:
        return self.mux.transport

    # -- the peer connection, as join_ours drives it

    def new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

    def add_tracks(self, pc: Any, start: int) -> None:
        level = 0x80 | 25 if self.index == 0 else 127  # the mentor talks (voice, -25 dBov), learners are silent
        for kind in ("video", "audio"):
            self.out[kind] = OutStream(
                self.replayer.clips[kind], start=start, level=level if self.replayer.audio_level else None
            )
            pc.addTrack(HeldTrack(kind))
        for connection in bridge.ice_connections(pc):
            bridge.install_host_gatherer(connection, self._gather)

    def hook(self, pc: Any) -> None:
        """After each (re)negotiation step: adopt new transceivers before aiortc starts them."""
        for transceiver in pc.getTransceivers():
            bridge.adopt_transceiver(transceiver, self._on_receive, functools.partial(self._on_send, transceiver))
        if self.writer is None:
            self.writer = MediaTransport(on_rtcp=self._on_rtcp, on_unknown_rtp=self._on_clear_rtp)
        for dtls in bridge.dtls_transports(pc):
            if self.writer.bind(dtls):
                self.dtls = dtls

    def learn_sdp(self, sdp: str, publishers: Optional[list[str]] = None) -> None:
        super().learn_sdp(sdp, publishers)
        for ssrc in self.ssrc_info:
            self.mux.announced[ssrc] = self

    async def close(self) -> None:
        await super().close()
        if self.protocol is not None:
            self.mux.detach(self.protocol)
        for key in [k for k, st in self.mux.streams.items() if st.owner is self]:
            del self.mux.streams[key]

    # -- aiortc's callbacks (DTLS is connected by then)

    def _on_receive(self, params: Any) -> None:
        self._attach()

    def _on_send(self, transceiver: Any, params: Any) -> None:
        track = transceiver.sender.track
        stream = self.out.get(track.kind) if isinstance(track, HeldTrack) else None
        if stream is None:
            return
        codecs = [c for c in params.codecs if c.payloadType is not None]
        primary = next((c for c in codecs if c.name.lower() != "rtx"), None)
        if primary is None:
            return
        rtx = next(
            (c for c in codecs if c.name.lower() == "rtx" and c.parameters.get("apt") == primary.payloadType), None
        )
        ssrc, rtx_ssrc = bridge.sender_ssrcs(transceiver.sender)
        first = not stream.bound
        stream.bind(
            ssrc=ssrc,
            pt=primary.payloadType,
            rtx_ssrc=rtx_ssrc,
            rtx_pt=rtx.payloadType if rtx is not None else None,
            ids={ext.uri: ext.id for ext in params.headerExtensions},
            mid=params.muxId,
        )
        self._attach()
        if first:
            self.replayer.start(self, stream)
            self.next_due = min(self.next_due, stream.due)

    async def _gather(self, connection: Any, component: int) -> list[Any]:
        protocol = bridge.stun_protocol(connection)
        self.mux.attach(protocol, bridge.local_username(connection))
        self.protocol = protocol
        name = self.mux.sockname
        return [bridge.register_host_protocol(connection, protocol, component, (name[0], name[1]), None)]

    def _attach(self) -> None:
        # SRTP/SRTCP routed to our protocol by the mux: decrypted in C and handed to our sinks
        # (the transport installed it when DTLS connected, which aiortc's callbacks follow)
        if not self.attached and self.writer is not None and self.protocol is not None:
            self.attached = self.writer.connected

    # -- receiving

    def new_stream(self, ssrc: int, data: bytes) -> Optional[InStream]:
        info = self.ssrc_info.get(ssrc)
        if info is None:
            return None
        kind, publisher = info
        pub = self.bench.by_key.get(publisher)
        source = pub.out.get(kind) if isinstance(pub, ReplayParticipant) else None
        st = InStream(ssrc, kind, publisher, self, source)
        seq = (data[2] << 8) | data[3]
        st.base = seq
        st.highest = seq - 1  # the mux counts this packet next
        self.streams[ssrc] = st
        return st

    def decrypt_sample(self, data: bytes, addr: Any, arrival: Optional[float] = None) -> None:
        """One counted packet, decrypted by the native ingress (it calls ``_on_clear_rtp``);
        ``arrival``: when the kernel received it (monotonic clock), if known."""
        if self.protocol is not None:
            self.sampled += 1
            self._arrival = arrival
            try:
                self.protocol.datagram_received(data, addr)
            finally:
                self._arrival = None

    def _on_clear_rtp(self, data: bytes) -> None:
        """A decrypted sample (the mux counted it): first keyframe, latency, payload check."""
        self.sample_clear += 1
        st = self.streams.get(int.from_bytes(data[8:12], "big"))
        if not isinstance(st, InStream) or not st.video:
            return
        now = self._arrival if self._arrival is not None else time.monotonic()
        payload = data[rtp_payload_offset(data) :]
        if st.first_frame is None:
            ts = int.from_bytes(data[4:8], "big")
            if st.keyframe_ts is None and vp8_keyframe_start(payload):
                st.keyframe_ts = ts
            if st.keyframe_ts == ts and data[1] & 0x80:
                st.first_frame = now
        src = st.source
        if src is None:
            return
        pid = vp8_picture_id(payload)
        if pid is None:
            self.payload_mismatch += 1
            return
        k = pid & (RING - 1)
        if src.sent_pid[k] != pid:
            return  # older than the ring
        self.sample_matched += 1
        if payload[4:] not in src.clip.frames[src.sent_index[k]][0]:
            self.payload_mismatch += 1
            return
        if self.timed and self.bench.measuring:
            sent = src.sent_at[k]
            self.bench.latency_ms.append((now - sent) * 1000)
            # the SFU stamps abs-send-time from its own monotonic clock when the packet reaches it
            stamp = find_abs_send_time(data, self.abs_id) if self.abs_id else None
            if stamp is not None:
                self.bench.ingress_ms.append(((stamp - (int(sent * 262144.0) & 0xFFFFFF)) & 0xFFFFFF) / 262.144)

    def _on_rtcp(self, data: bytes) -> None:
        for message in rtcp.parse_rtcp(data):
            if isinstance(message, rtcp.KeyframeRequest):
                for stream in self.out.values():
                    if stream.ssrc in message.media_ssrcs:
                        self.plis_got += 1
                        stream.request_keyframe()
            elif isinstance(message, rtcp.Nack):
                for stream in self.out.values():
                    if stream.ssrc == message.media_ssrc and self.writer is not None:
                        self.nacks_got += 1
                        stream.retransmit(message.lost, self.writer.send)

    # -- RTCP of ours (the replayer calls it every RTCP_INTERVAL)

    def reports(self, now: float) -> None:
        """SR + SDES per published stream, one RR for every stream received."""
        writer = self.writer
        if writer is None:
            return
        video = self.out.get("video")
        out = self.sender_reports() + (self.receiver_reports(video.ssrc) if video is not None and video.ssrc else b"")
        if out:
            writer.send_rtcp(out)

    def sender_reports(self) -> bytes:
        """SR + SDES for every stream this participant publishes."""
        ntp = int((time.time() + NTP_EPOCH) * 4294967296.0)
        cname = f"bench-{self.room}-{self.index}"
        out = b""
        for stream in self.out.values():
            if stream.bound and stream.frames:
                out += rtcp.build_sr(stream.ssrc, ntp, stream.last_ts, stream.packets, stream.octets)
                out += rtcp.build_sdes(stream.ssrc, cname)
        return out

    def receiver_reports(self, sender_ssrc: int) -> bytes:
        """RRs (31 blocks each) for every stream received since the last call, from ``sender_ssrc``."""
        blocks = []
        for st in self.streams.values():
            if st.highest < st.base:
                continue
            expected = st.highest - st.base + 1
            exp0, got0 = self._rr_last.get(st.ssrc, (0, 0))
            interval = expected - exp0
            lost_interval = max(0, interval - (st.packets - got0))
            self._rr_last[st.ssrc] = (expected, st.packets)
            blocks.append(
                rtcp.ReportBlock(
                    st.ssrc,
                    min(255, lost_interval * 256 // interval) if interval > 0 else 0,
                    max(0, expected - st.packets),
                    st.highest & 0xFFFFFFFF,
                    0,
                    0,
                    0,
                )
            )
        out = b""
        for i in range(0, len(blocks), 31):
            out += rtcp.build_rr(sender_ssrc, blocks[i : i + 31])
        return out
