"""The aiortc load generator: synthetic participants on aiortc's own media path.

Each participant publishes the clips through aiortc's sender (``benchmarks/media.py``:
encoded once, aiortc only packetizes and protects) and receives through aiortc's
DTLS transport; SRTP is counted per SSRC below aiortc's receiver
(``Participant._fast_path``: header read in the clear, 1 in N decrypted for latency).
Costs about as much CPU per packet as the server: ``benchmarks/rtp_replay.py`` is the
cheap one. Kept for comparison (``sfu_load.py --generator aiortc``) and for the
baseline relay, whose answers carry no SSRC routing of ours.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections import defaultdict
from typing import Any, Optional

import aiohttp

from benchmarks.rtp_wire import (
    Stream,
    Wire,
    count_feedback,
    find_abs_send_time,
    rtp_payload_offset,
    vp8_keyframe_start,
)

ORIGINAL = "_bench_original"
CLIENT_RCVBUF = 4 << 20  # the kernel caps it at net.core.rmem_max


class Bench:
    """Everything one load-generator process shares across its participants."""

    def __init__(self, clips: dict[str, Any], sample_mask: int = 7) -> None:
        self.clips = clips
        #: subscribers decrypt 1 packet in sample_mask + 1 (latency samples); --latency-sample
        self.sample_mask = sample_mask
        self.wire = Wire()
        self.measuring = False
        self.latency_ms: list[float] = []
        self.ingress_ms: list[float] = []
        self.by_key: dict[str, Participant] = {}
        self.participants: list[Participant] = []


class Participant:
    def __init__(self, bench: Bench, room: int, index: int, *, decode: bool) -> None:
        self.bench = bench
        self.room = room
        self.index = index
        self.decode = decode
        self.key = ""  # peer_id (ours) or name (baseline)
        self.pcs: list[Any] = []
        self.streams: dict[int, Stream] = {}
        self.ssrc_info: dict[int, tuple[str, str]] = {}  # ssrc -> (kind, publisher key)
        self.unknown = 0
        self.abs_id = 0  # subscriber's abs-send-time extension id (our SFU only)
        self.t_join = 0.0
        self.t_first_video_sent: Optional[float] = None
        self.nacks_sent = self.plis_sent = 0
        self.nacks_got = self.plis_got = 0
        self.packets_sent = 0  # RTP this participant published
        self.decoded: dict[str, int] = defaultdict(int)
        self.decoded_size: Optional[tuple[int, int]] = None
        self.errors: list[str] = []
        self.tracks: list[Any] = []
        self.ws: Any = None
        self._tasks: list[asyncio.Future[Any]] = []

    def new_pc(self) -> Any:
        from aiortc import RTCPeerConnection

        return RTCPeerConnection()

    # -- media hooks (client side, below aiortc's receiver: nothing decodes unless self.decode)

    def hook(self, pc: Any) -> None:
        transports = set()
        for t in pc.getTransceivers():
            for d in (t.sender.transport, t.receiver.transport):
                if d is not None:
                    transports.add(d)
        for dtls in transports:
            if getattr(dtls, ORIGINAL, None) is not None:
                continue
            setattr(dtls, ORIGINAL, (dtls._handle_rtp_data, dtls._handle_rtcp_data, dtls._send_rtp))
            dtls._handle_rtp_data = self._make_rtp_in(dtls._handle_rtp_data)
            dtls._handle_rtcp_data = self._make_rtcp_in(dtls._handle_rtcp_data)
            dtls._send_rtp = self._make_rtp_out(dtls._send_rtp)  # RTP and RTCP both leave through it
        for dtls in transports:
            for proto in getattr(dtls.transport._connection, "_protocols", []):
                sock = getattr(proto, "transport", None) and proto.transport.get_extra_info("socket")
                if sock is not None and not getattr(proto, "_bench_rcvbuf", False):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)
                    except OSError:
                        pass
                    proto._bench_rcvbuf = True
        for t in pc.getTransceivers():
            track = t.sender.track
            if track is not None and hasattr(track, "request_keyframe"):
                t.sender._send_keyframe = track.request_keyframe  # a PLI jumps to the clip's next keyframe

    def _make_rtp_in(self, original: Any) -> Any:
        decode = self.decode

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            self.on_rtp(data, True, None)
            if decode:
                await original(data, arrival_time_ms)
            else:
                self._fast_path(original)

        return handle_rtp_data

    def _fast_path(self, original: Any) -> None:
        """Count SRTP from the socket callback on, reading the header in the clear (SRTP encrypts only
        the payload); decrypt only what needs the payload (first keyframe, 1 in --latency-sample for latency)."""
        dtls = getattr(original, "__self__", None)
        if dtls is None or getattr(dtls, "_bench_fast", False):
            return
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return
        proto = pair.protocol
        slow = proto.datagram_received
        dtls._bench_fast = True
        counter = [0]
        sample = self.bench.sample_mask

        def datagram_received(data: bytes, addr: Any) -> None:
            if len(data) > 11 and 127 < data[0] < 192 and not 191 < data[1] < 209:
                counter[0] += 1
                need = counter[0] & sample == 0 or self.needs_payload(data)
                if need:
                    try:
                        self.on_rtp(dtls._rx_srtp.unprotect(data), True, None)
                    except Exception:  # noqa: BLE001 - not authentic / replayed
                        pass
                else:
                    self.on_rtp(data, False, None)
                return
            slow(data, addr)

        proto.datagram_received = datagram_received

    def needs_payload(self, data: bytes) -> bool:
        st = self.streams.get(int.from_bytes(data[8:12], "big"))
        return st is None or (st.kind == "video" and st.first_frame is None)

    def on_rtp(self, data: bytes, clear: bool, _unused: Any) -> None:
        """One RTP packet (``clear``: payload decrypted) for this subscriber."""
        bench = self.bench
        now = time.monotonic()
        ssrc = int.from_bytes(data[8:12], "big")
        st = self.streams.get(ssrc)
        if st is None:
            info = self.ssrc_info.get(ssrc)
            if info is None:
                self.unknown += 1
                return
            st = self.streams[ssrc] = Stream(ssrc, info[0], info[1])
        seq = (data[2] << 8) | data[3]
        st.packets += 1
        st.octets += len(data) - (0 if clear else 10)  # SRTP auth tag
        if st.highest < 0:
            st.base = st.highest = seq
        else:
            delta = (seq - st.highest) & 0xFFFF
            if delta < 0x8000:
                st.highest += delta
        if st.kind == "video":
            if data[1] & 0x80:
                st.frames += 1  # marker: last packet of a frame
            if not clear:
                return
            off = rtp_payload_offset(data)
            if bench.measuring:
                sent = bench.wire.lookup(hash(data[off:]))
                if sent is not None:
                    bench.latency_ms.append((now - sent) * 1000)
                    if self.abs_id:
                        stamp = find_abs_send_time(data, self.abs_id)
                        if stamp is not None:
                            sent24 = int(sent * 262144.0) & 0xFFFFFF
                            bench.ingress_ms.append(((stamp - sent24) & 0xFFFFFF) / 262.144)
            if st.first_frame is None:
                ts = int.from_bytes(data[4:8], "big")
                if st.keyframe_ts is None and vp8_keyframe_start(data[off:]):
                    st.keyframe_ts = ts
                if st.keyframe_ts == ts and data[1] & 0x80:
                    st.first_frame = now

    def _make_rtcp_in(self, original: Any) -> Any:
        async def handle_rtcp_data(data: bytes) -> None:
            n, p = count_feedback(data)
            self.nacks_got += n
            self.plis_got += p
            await original(data)

        return handle_rtcp_data

    def _make_rtp_out(self, original: Any) -> Any:
        wire = self.bench.wire

        async def send_rtp(data: bytes) -> None:
            now = time.monotonic()
            if 192 <= data[1] <= 223:  # RTCP
                n, p = count_feedback(data)
                self.nacks_sent += n
                self.plis_sent += p
            else:
                self.packets_sent += 1
                if data[1] & 0x7F in self._video_pts:
                    if self.t_first_video_sent is None:
                        self.t_first_video_sent = now
                    wire.sent(hash(data[rtp_payload_offset(data) :]), now)
            await original(data)

        return send_rtp

    _video_pts: set[int] = set()

    def learn_sdp(self, sdp: str, publishers: Optional[list[str]] = None) -> None:
        """ssrc -> (kind, publisher) from a remote description (msid stream id = publisher peer_id)."""
        index = -1
        kind = mid_pub = ""
        pts: set[int] = set()
        for line in sdp.splitlines():
            if line.startswith("m="):
                index += 1
                kind = line[2:].split()[0]
                mid_pub = publishers[index] if publishers and index < len(publishers) else ""
            elif line.startswith("a=msid:") and not publishers:
                mid_pub = line[7:].split()[0]
            elif line.startswith("a=ssrc:") and mid_pub:
                ssrc = int(line[7:].split()[0])
                self.ssrc_info[ssrc] = (kind, mid_pub)
            elif line.startswith("a=extmap:") and line.endswith("abs-send-time") and not publishers:
                self.abs_id = int(line[9:].split()[0].split("/")[0])
            elif line.startswith("a=rtpmap:") and kind == "video" and "VP8" in line:
                pts.add(int(line[9:].split()[0]))
        if pts:
            self._video_pts = self._video_pts | pts

    def add_tracks(self, pc: Any, start: int) -> None:
        from benchmarks.media import ReplayTrack

        for kind in ("video", "audio"):
            track = ReplayTrack(self.bench.clips[kind], start=start)
            self.tracks.append(track)
            pc.addTrack(track)

    def watch_decoded(self, pc: Any) -> None:
        @pc.on("track")
        def on_track(track: Any) -> None:
            async def consume() -> None:
                while True:
                    try:
                        frame = await track.recv()
                    except Exception:  # noqa: BLE001 - track ended
                        return
                    self.decoded[track.kind] += 1
                    if track.kind == "video":
                        self.decoded_size = (frame.width, frame.height)

            self._tasks.append(asyncio.ensure_future(consume()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pc in self.pcs:
            try:
                await asyncio.wait_for(pc.close(), 5)
            except Exception:  # noqa: BLE001
                pass
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()


async def join_ours(p: Participant, http: aiohttp.ClientSession, base: str, session_id: int, token: str) -> None:
    """Our SFU: room token, /ws/room signaling, one peer connection."""
    from aiortc import RTCSessionDescription

    headers = {"Authorization": f"Bearer {token}"}
    p.t_join = time.monotonic()
    async with http.post(f"{base}/api/rooms/{session_id}/token", headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"room token: {r.status} {await r.text()}")
        url = (await r.json())["signaling_url"]
    # the server builds the URL from the Host it saw; keep ours (a proxy may differ)
    path = url[url.index("/ws/room/") :]
    p.ws = await http.ws_connect(base.replace("http", "ws", 1) + path, heartbeat=20)
    pc = p.new_pc()
    p.pcs.append(pc)
    p.add_tracks(pc, start=random.randint(0, 200))
    if p.decode:
        p.watch_decoded(pc)
    answered = asyncio.Event()

    async def reader() -> None:
        async for msg in p.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "joined":
                p.key = data["peer_id"]
                p.bench.by_key[p.key] = p
                await pc.setLocalDescription(await pc.createOffer())
                p.hook(pc)
                p.learn_sdp(pc.localDescription.sdp)  # our own VP8 payload types
                await p.ws.send_str(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
            elif kind == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
                p.hook(pc)
                answered.set()
            elif kind == "offer":
                p.learn_sdp(data["sdp"])
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                p.hook(pc)
                await pc.setLocalDescription(await pc.createAnswer())
                p.hook(pc)
                await p.ws.send_str(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp}))
            elif kind == "error":
                p.errors.append(str(data.get("code")))

    p._tasks.append(asyncio.ensure_future(reader()))
    await p.ws.send_str(json.dumps({"type": "join", "display_name": f"bench {p.room}.{p.index}"}))
    await asyncio.wait_for(answered.wait(), 30)


async def join_baseline(p: Participant, http: aiohttp.ClientSession, base: str, room_size: int) -> None:
    """The baseline relay: publish on one peer connection, subscribe on a second once the room is full."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    p.key = f"r{p.room}p{p.index}"
    p.bench.by_key[p.key] = p
    p.t_join = time.monotonic()
    p.ws = await http.ws_connect(f"{base.replace('http', 'ws', 1)}/ws?room={p.room}&name={p.key}")
    pub = RTCPeerConnection()
    p.pcs.append(pub)
    p.add_tracks(pub, start=random.randint(0, 200))
    await pub.setLocalDescription(await pub.createOffer())
    p.hook(pub)
    p.learn_sdp(pub.localDescription.sdp)
    await p.ws.send_str(json.dumps({"type": "publish", "sdp": pub.localDescription.sdp}))
    answered = asyncio.Event()
    sub = RTCPeerConnection()
    p.pcs.append(sub)
    if p.decode:
        p.watch_decoded(sub)

    async def reader() -> None:
        subscribed = False
        async for msg in p.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["type"] == "answer":
                await pub.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
                p.hook(pub)
                answered.set()
            elif data["type"] == "count" and data["n"] >= room_size and not subscribed:
                subscribed = True
                await p.ws.send_str(json.dumps({"type": "subscribe"}))
            elif data["type"] == "offer":
                p.learn_sdp(data["sdp"], data["publishers"])
                await sub.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await sub.setLocalDescription(await sub.createAnswer())
                p.hook(sub)
                await p.ws.send_str(json.dumps({"type": "answer", "sdp": sub.localDescription.sdp}))

    p._tasks.append(asyncio.ensure_future(reader()))
    await asyncio.wait_for(answered.wait(), 30)
