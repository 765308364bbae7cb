"""SFU load test: synthetic aiortc participants in real rooms, measured from outside.

Each participant joins the way a real client does: REST login, a room token
(``POST /api/rooms/{id}/token``), the documented signaling on
``/ws/room/{id}?token=``; it publishes VP8 (640x480@30, ~600 kbps by default)
and Opus that were encoded ONCE and are replayed (benchmarks/media.py: aiortc's
sender only packetizes), and receives everyone else. Subscribers do not decode:
decrypted RTP is counted per SSRC below aiortc's receiver (received packets,
bytes, sequence gaps = loss); one subscriber per run decodes everything it
gets, to prove the media is valid, and its RTCP (NACK, PLI) is counted.

Measured per room size, after a warm-up, over ``--duration`` seconds:
- SFU process CPU from ``/proc/<pid>/stat`` (utime+stime, all threads; all
  worker processes with ``--workers``) and the engine's forwarded-packet
  counter (``peerlearn_sfu_packets_forwarded_total`` on ``/metrics``):
  **CPU µs per forwarded packet** and forwarded packets/s;
- per-stream received bitrate, loss, NACK/PLI, join -> first frame (token
  request -> first complete keyframe of each remote publisher), and the
  latency the SFU path adds: every published RTP payload is stamped with its
  send time (keyed by the payload bytes, which the SFU forwards untouched) and
  looked up on arrival — loopback, sender SRTP + SFU + receiver SRTP, same clock.

``--baseline``: the same participants through aiortc's MediaRelay with
re-encoding (a minimal server in a subprocess of this tool: decode once per
publisher, encode once per subscriber, as aiortc's examples do), so every
report carries our ratio against it from the same run.

    .venv/bin/python benchmarks/sfu_load.py --rooms 1,5,10 --participants 5 --duration 20
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --workers 2        # 1 vs 2 processes
    .venv/bin/python benchmarks/sfu_load.py --url http://host:8080 --server-pid 1234 --rooms 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.common import (  # noqa: E402
    LocalServer, command_line, free_port, machine, percentiles, progress, wait_healthy, write_report,
)

PASSWORD = "bench-Passw0rd-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ORIGINAL = "_bench_original"
SAMPLE_MASK = 7  # subscribers decrypt 1 packet in SAMPLE_MASK + 1 (latency samples); --latency-sample


# ---------------------------------------------------------------- server process


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(entry))
    return out


def parse_cpus(spec: str) -> set[int]:
    """taskset-style list: "1", "0,2", "0-3"."""
    out: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part.strip():
            out.add(int(part))
    return out


def pin(pid: int, cpus: set[int]) -> None:
    """Like ``taskset -a -p -c``: every thread of ``pid`` (threads started later inherit it)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


def pinning(args: argparse.Namespace) -> tuple[Optional[set[int]], Optional[set[int]]]:
    """(server cpus, generator cpus). auto: one server process gets the last core to itself and the load
    generator the others, so neither starves the other (2 cores: ``taskset -c 1`` server, ``-c 0`` clients)."""
    cores = os.cpu_count() or 1
    server = args.server_cpus
    clients = args.client_cpus
    if server == "auto":
        server = str(cores - 1) if cores >= 2 and args.workers == 1 and not args.url else "off"
    if clients == "auto":
        clients = ",".join(str(c) for c in range(cores - 1)) if server != "off" else "off"
    return (None if server == "off" else parse_cpus(server)), (None if clients == "off" else parse_cpus(clients))


def socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(int(link[8:-1]))
    except OSError:
        pass
    return out


def udp_drops(pids: list[int]) -> dict[int, int]:
    """Per UDP socket (inode) of these processes: datagrams the kernel dropped (receive buffer full),
    from /proc/net/udp. Compare two snapshots with ``drops_between`` (sockets come and go)."""
    inodes: set[int] = set()
    for pid in pids:
        inodes |= socket_inodes(pid)
    out: dict[int, int] = {}
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) >= 13 and int(f[9]) in inodes:
                out[int(f[9])] = int(f[12])
    return out


def drops_between(before: dict[int, int], after: dict[int, int]) -> int:
    return sum(max(0, n - before.get(inode, 0)) for inode, n in after.items())


def runqueue_wait(pids: list[int]) -> float:
    """Seconds these processes' threads were runnable but waiting for a CPU (/proc/PID/task/TID/schedstat):
    how much other load on the machine delayed them."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return total / 1e9


CLIENT_RCVBUF = 4 << 20  # the kernel caps it at net.core.rmem_max


class BenchServer(LocalServer):
    """LocalServer with ``--workers N`` (and a private Redis when N > 1)."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.workers = workers
        self.redis: Optional[subprocess.Popen[bytes]] = None
        env = {"PEERLEARN_LOG_LEVEL": "ERROR"}
        if workers > 1 and not os.environ.get("PEERLEARN_REDIS_URL"):
            rport = free_port()
            self.redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            env["PEERLEARN_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        super().__init__(data_dir, env=env, demo=False)

    def start(self) -> None:
        if self.workers <= 1:
            return super().start()
        cli = [sys.executable, "-m", "api.cli"]
        self.proc = subprocess.Popen([*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                                      "--workers", str(self.workers)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc = self.proc
        wait_healthy(self.url, ready=lambda: len(child_pids(proc.pid)) >= self.workers)
        time.sleep(2)  # every worker registered in Redis

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)


# ---------------------------------------------------------------- wire bookkeeping


class Wire:
    """Send times of published RTP payloads (two generations, rotated every 2 s)."""

    def __init__(self) -> None:
        self.new: dict[int, float] = {}
        self.old: dict[int, float] = {}
        self.rotated = time.monotonic()

    def sent(self, key: int, now: float) -> None:
        if now - self.rotated > 2.0:
            self.old, self.new, self.rotated = self.new, {}, now
        self.new[key] = now

    def lookup(self, key: int) -> Optional[float]:
        t = self.new.get(key)
        return t if t is not None else self.old.get(key)


def rtp_payload_offset(data: bytes) -> int:
    off = 12 + (data[0] & 0x0F) * 4
    if data[0] & 0x10 and len(data) >= off + 4:
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    return off


def vp8_keyframe_start(p: bytes) -> bool:
    if not p or not p[0] & 0x10 or p[0] & 0x07:
        return False
    i = 1
    if p[0] & 0x80:
        x = p[1]
        i = 2
        if x & 0x80:
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:
            i += 1
        if x & 0x30:
            i += 1
    return i < len(p) and not p[i] & 0x01


def find_abs_send_time(data: bytes, ext_id: int) -> Optional[int]:
    """The 24-bit abs-send-time value of a one-byte-header extension block, if present."""
    if not data[0] & 0x10:
        return None
    off = 12 + (data[0] & 0x0F) * 4
    if data[off:off + 2] != b"\xbe\xde":
        return None
    end = off + 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    i = off + 4
    while i < end:
        b = data[i]
        if b == 0:
            i += 1
            continue
        length = (b & 0x0F) + 1
        if b >> 4 == ext_id and length == 3:
            return (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]
        i += 1 + length
    return None


def count_feedback(data: bytes) -> tuple[int, int]:
    """(NACK, PLI/FIR) messages in a compound RTCP packet."""
    nacks = plis = 0
    pos = 0
    while pos + 4 <= len(data):
        fmt, pt = data[pos] & 0x1F, data[pos + 1]
        if pt == 205 and fmt == 1:
            nacks += 1
        elif pt == 206 and fmt in (1, 4):
            plis += 1
        pos += 4 * (((data[pos + 2] << 8) | data[pos + 3]) + 1)
    return nacks, plis


class Stream:
    """One remote track as one subscriber receives it."""

    __slots__ = ("ssrc", "kind", "publisher", "packets", "octets", "base", "highest", "frames",
                 "first_frame", "keyframe_ts")

    def __init__(self, ssrc: int, kind: str, publisher: str) -> None:
        self.ssrc, self.kind, self.publisher = ssrc, kind, publisher
        self.packets = self.octets = self.frames = 0
        self.base = -1
        self.highest = -1  # extended
        self.first_frame: Optional[float] = None
        self.keyframe_ts: Optional[int] = None

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.packets, self.octets, self.highest, self.frames


# ---------------------------------------------------------------- participants


class Bench:
    """Everything one load-generator process shares across its participants."""

    def __init__(self, clips: dict[str, Any]) -> None:
        self.clips = clips
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
        self.decoded: dict[str, int] = defaultdict(int)
        self.decoded_size: Optional[tuple[int, int]] = None
        self.errors: list[str] = []
        self.tracks: list[Any] = []
        self.ws: Any = None
        self._tasks: list[asyncio.Future[Any]] = []

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
        sample = SAMPLE_MASK

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
            elif data[1] & 0x7F in self._video_pts:
                if self.t_first_video_sent is None:
                    self.t_first_video_sent = now
                wire.sent(hash(data[rtp_payload_offset(data):]), now)
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
    from aiortc import RTCPeerConnection, RTCSessionDescription

    headers = {"Authorization": f"Bearer {token}"}
    p.t_join = time.monotonic()
    async with http.post(f"{base}/api/rooms/{session_id}/token", headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"room token: {r.status} {await r.text()}")
        url = (await r.json())["signaling_url"]
    # the server builds the URL from the Host it saw; keep ours (a proxy may differ)
    path = url[url.index("/ws/room/"):]
    p.ws = await http.ws_connect(base.replace("http", "ws", 1) + path, heartbeat=20)
    pc = RTCPeerConnection()
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


# ---------------------------------------------------------------- API setup


async def api_json(http: aiohttp.ClientSession, method: str, url: str, token: str = "",
                   body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        if r.status not in ok:
            raise RuntimeError(f"{method} {url}: {r.status} {await r.text()}")
        return await r.json()


async def make_rooms(http: aiohttp.ClientSession, base: str, rooms: int, participants: int,
                     run_id: str) -> list[dict[str, Any]]:
    """Per room: a mentor and learners (registered + signed in), a session starting in ~5 min, bookings."""
    sem = asyncio.Semaphore(4)

    async def account(email: str, role: str) -> str:
        async with sem:
            await api_json(http, "POST", base + "/api/auth/register", body={
                "email": email, "password": PASSWORD, "full_name": email.split("@")[0].replace(".", " "),
                "role": role}, ok=(201, 409))
            out = await api_json(http, "POST", base + "/api/auth/login", body={"email": email, "password": PASSWORD})
            return str(out["access_token"])

    async def room(i: int) -> dict[str, Any]:
        mentor = await account(f"bench-{run_id}-r{i}-mentor@example.com", "mentor")
        starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0).isoformat()
        sess = await api_json(http, "POST", base + "/api/sessions", mentor, {
            "title": f"Load test room {i}", "domain": "Programming", "capacity": max(participants - 1, 1),
            "starts_at": starts, "duration_min": 60, "price_cents": 0})
        await api_json(http, "POST", f"{base}/api/sessions/{sess['id']}/publish", mentor)
        learners = await asyncio.gather(*[account(f"bench-{run_id}-r{i}-l{k}@example.com", "learner")
                                          for k in range(participants - 1)])
        for tok in learners:
            await api_json(http, "POST", base + "/api/bookings/create", tok, {"session_id": sess["id"]})
        return {"session_id": sess["id"], "tokens": [mentor, *learners]}

    return list(await asyncio.gather(*[room(i) for i in range(rooms)]))


async def scrape_forwarded(http: aiohttp.ClientSession, urls: list[str]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for url in urls:
        try:
            async with http.get(url + "/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            continue
        for line in text.splitlines():
            if line.startswith("peerlearn_sfu_") and not line.startswith("#"):
                name, _, value = line.partition(" ")
                out[name.replace("peerlearn_sfu_", "")] += float(value)
    return dict(out)


async def metric_urls(base: str, redis_url: Optional[str]) -> list[str]:
    """Every process's own /metrics: the internal URLs registered in Redis, else the public one."""
    if not redis_url:
        return [base]
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    urls = []
    try:
        async for key in client.scan_iter(match="pl:node:*"):
            raw = await client.get(key)
            if raw:
                url = json.loads(raw).get("url")
                if url:
                    urls.append(url)
    finally:
        await client.aclose()
    return urls or [base]


# ---------------------------------------------------------------- one measured run


async def run_size(*, mode: str, fps: int, base: str, rooms: int, participants: int, duration: float, ramp: float,
                   warmup: float, pids: list[int], clips: dict[str, Any], redis_url: Optional[str],
                   run_id: str, label: str) -> dict[str, Any]:
    bench = Bench(clips)
    gc.collect()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        setup = None
        if mode == "ours":
            setup = await make_rooms(http, base, rooms, participants, f"{run_id}{rooms}")
        people = [Participant(bench, r, i, decode=(r == 0 and i == 1)) for r in range(rooms)
                  for i in range(participants)]
        bench.participants = people
        total = len(people)
        step = ramp / max(total - 1, 1)
        t_start = time.monotonic()
        join_tasks = []
        # the mentor opens each room (learners get 409 room_not_open before that), then the learners join
        order = [p for p in people if p.index == 0] + [p for p in people if p.index != 0]
        for n, p in enumerate(order):
            if mode == "ours":
                assert setup is not None
                coro = join_ours(p, http, base, setup[p.room]["session_id"], setup[p.room]["tokens"][p.index])
            else:
                coro = join_baseline(p, http, base, participants)
            join_tasks.append(asyncio.ensure_future(coro))
            progress(n + 1, total, f"{label}: joining {n + 1}/{total}")
            if n + 1 == rooms:
                await asyncio.gather(*join_tasks, return_exceptions=True)
            await asyncio.sleep(step)
        results = await asyncio.gather(*join_tasks, return_exceptions=True)
        join_failures = [repr(r) for r in results if isinstance(r, BaseException)]
        # wait for every subscriber to see every remote video, or the warm-up, whichever is later
        expected = participants - 1
        deadline = time.monotonic() + max(warmup, 10)
        while time.monotonic() < deadline:
            got = sum(1 for p in people for s in p.streams.values() if s.kind == "video" and s.packets)
            progress(got, total * expected, f"{label}: {got}/{total * expected} video streams flowing")
            if got >= total * expected and time.monotonic() - t_start > ramp + warmup:
                break
            await asyncio.sleep(0.5)
        progress(1, 1)
        urls = await metric_urls(base, redis_url) if mode == "ours" else []
        lag: list[float] = []

        async def lag_probe() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.05)
                lag.append((time.perf_counter() - t - 0.05) * 1000)

        prober = asyncio.ensure_future(lag_probe())
        snap0 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        fwd0 = await scrape_forwarded(http, urls) if urls else {}
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        gen0 = sum(os.times()[:2])
        drops0 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait0 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        t0 = time.monotonic()
        bench.measuring = True
        while (now := time.monotonic()) < t0 + duration:
            progress(now - t0, duration, f"{label}: measuring, {len(bench.latency_ms)} latency samples")
            await asyncio.sleep(0.5)
        bench.measuring = False
        t1 = time.monotonic()
        cpu1 = sum(proc_cpu(pid) for pid in pids)
        gen1 = sum(os.times()[:2])
        drops1 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait1 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        fwd1 = await scrape_forwarded(http, urls) if urls else {}
        snap1 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        progress(1, 1)
        prober.cancel()
        elapsed = t1 - t0

        # ---- per stream, over the window
        per_stream: dict[str, list[float]] = {"video_kbps": [], "audio_kbps": [], "loss_pct": []}
        received = expected_pkts = frames = 0
        for key, (pk1, oc1, hi1, fr1) in snap1.items():
            pk0, oc0, hi0, fr0 = snap0.get(key, (0, 0, -1, 0))
            frames += fr1 - fr0
            kind = next(s.kind for p in people if id(p) == key[0] for s in p.streams.values() if s.ssrc == key[1])
            per_stream[f"{kind}_kbps"].append((oc1 - oc0) * 8 / elapsed / 1000)
            got = pk1 - pk0
            exp = hi1 - hi0 if hi0 >= 0 else got
            received += got
            expected_pkts += max(exp, got)
            if exp > 0:
                per_stream["loss_pct"].append(max(0.0, (exp - got) / exp * 100))
        first_frame = []
        missing_video = 0
        for p in people:
            for pub in people:
                if pub is p or pub.room != p.room:
                    continue
                st = next((s for s in p.streams.values() if s.kind == "video" and s.publisher == pub.key), None)
                if st is None or st.first_frame is None or pub.t_first_video_sent is None:
                    missing_video += 1
                    continue
                first_frame.append((st.first_frame - max(p.t_join, pub.t_first_video_sent)) * 1000)
        decoder = next((p for p in people if p.decode), None)
        streams_expected = total * expected * 2
        streams_flowing = sum(1 for v in snap1.values() if v[0])
        forwarded = (fwd1.get("packets_forwarded_total", 0) - fwd0.get("packets_forwarded_total", 0)) if urls else 0
        egress = forwarded if forwarded > 0 else received  # baseline: what the clients received
        cpu = cpu1 - cpu0
        out: dict[str, Any] = {
            "mode": mode, "rooms": rooms, "participants": participants, "seconds": round(elapsed, 2),
            "loadavg": os.getloadavg(),
            "server_processes": len(pids),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_cores": round(cpu / elapsed, 3),
            "forwarded_packets": int(egress),
            "forwarded_packets_source": "engine counter (/metrics)" if forwarded > 0 else "clients' received count",
            "forwarded_packets_per_s": round(egress / elapsed, 1),
            "cpu_us_per_forwarded_packet": round(cpu / egress * 1e6, 2) if egress else None,
            "streams_expected": streams_expected, "streams_flowing": streams_flowing,
            "video_frames_delivered_per_s": round(frames / elapsed, 1),
            # one forwarded 640x480@30 stream = 30 delivered frames/s (+ its audio): CPU cores per such stream
            "cpu_cores_per_forwarded_video_stream": round(cpu / elapsed / (frames / elapsed / fps), 5)
            if frames else None,
            "received_packets_per_s": round(received / elapsed, 1),
            "loss_pct": round((expected_pkts - received) / expected_pkts * 100, 3) if expected_pkts else None,
            "loss_pct_per_stream": percentiles(per_stream["loss_pct"], (50, 99, 100)),
            # where the loss happened: datagrams the kernel dropped because a receive buffer was full
            "udp_drops": {"sfu_sockets": drops_between(drops0[0], drops1[0]),
                          "generator_sockets": drops_between(drops0[1], drops1[1])},
            # share of the window the process was runnable but waited for a CPU (other load on the machine)
            "runqueue_wait_share": {"sfu": round((wait1[0] - wait0[0]) / elapsed, 3),
                                    "generator": round((wait1[1] - wait0[1]) / elapsed, 3)},
            "video_kbps_per_stream": {**percentiles(per_stream["video_kbps"], (1, 50, 99)),
                                      "mean": round(sum(per_stream["video_kbps"]) / max(len(per_stream["video_kbps"]), 1), 1)},
            "audio_kbps_per_stream": {**percentiles(per_stream["audio_kbps"], (1, 50, 99)),
                                      "mean": round(sum(per_stream["audio_kbps"]) / max(len(per_stream["audio_kbps"]), 1), 1)},
            "latency_ms": {**percentiles(bench.latency_ms, (50, 90, 99)), "samples": len(bench.latency_ms)}
            if bench.latency_ms else None,
            "sfu_ingress_latency_ms": {**percentiles(bench.ingress_ms, (50, 90, 99)), "samples": len(bench.ingress_ms)}
            if bench.ingress_ms else None,
            "join_to_first_frame_ms": {**percentiles(first_frame, (50, 95, 100)), "pairs": len(first_frame),
                                       "missing": missing_video},
            "nacks_to_publishers": sum(p.nacks_got for p in people),
            "plis_to_publishers": sum(p.plis_got for p in people),
            "decoding_subscriber": {"frames": dict(decoder.decoded), "video_size": decoder.decoded_size,
                                    "nacks_sent": decoder.nacks_sent, "plis_sent": decoder.plis_sent}
            if decoder else None,
            "engine_counters": {k: fwd1.get(k, 0) - fwd0.get(k, 0) if k.endswith("_total") else fwd1.get(k)
                                for k in fwd1} if urls else None,
            "generator_cpu_cores": round((gen1 - gen0) / elapsed, 3),
            "generator_loop_lag_ms": percentiles(lag, (50, 99)),
            "join_failures": join_failures[:5], "signaling_errors": sorted({e for p in people for e in p.errors}),
            "unknown_ssrc_packets": sum(p.unknown for p in people),
        }
        for p in people:
            await p.close()
        if mode == "ours" and setup:
            for r in setup:
                try:
                    await api_json(http, "POST", f"{base}/api/rooms/{r['session_id']}/end", r["tokens"][0])
                except RuntimeError:
                    pass
        await asyncio.sleep(1.0)
        return out


# ---------------------------------------------------------------- the baseline server


def serve_baseline(port: int) -> None:
    """aiortc's MediaRelay with re-encoding: decode each publisher once, encode per subscriber."""
    from aiohttp import web
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    relay = MediaRelay()
    rooms: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        room, name = request.query["room"], request.query["name"]
        me: dict[str, Any] = {"tracks": {}, "ws": ws, "pcs": []}
        rooms[room][name] = me
        sub_pc = None
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "publish":
                pc = RTCPeerConnection()
                me["pcs"].append(pc)

                @pc.on("track")
                def on_track(track: Any) -> None:
                    me["tracks"][track.kind] = track

                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await ws.send_json({"type": "answer", "sdp": pc.localDescription.sdp})
                n = sum(1 for m in rooms[room].values() if len(m["tracks"]) == 2)
                for other in rooms[room].values():
                    await other["ws"].send_json({"type": "count", "n": n})
            elif data["type"] == "subscribe":
                sub_pc = RTCPeerConnection()
                me["pcs"].append(sub_pc)
                publishers = []
                for other_name, other in rooms[room].items():
                    if other_name == name:
                        continue
                    for kind in ("video", "audio"):
                        if kind in other["tracks"]:
                            sub_pc.addTrack(relay.subscribe(other["tracks"][kind]))
                            publishers.append(other_name)
                await sub_pc.setLocalDescription(await sub_pc.createOffer())
                await ws.send_json({"type": "offer", "sdp": sub_pc.localDescription.sdp, "publishers": publishers})
            elif data["type"] == "answer" and sub_pc is not None:
                await sub_pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
        for pc in me["pcs"]:
            await pc.close()
        rooms[room].pop(name, None)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    web.run_app(app, host="127.0.0.1", port=port, print=None)


class BaselineServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-baseline",
                                      str(self.port)], stdout=subprocess.DEVNULL)
        wait_healthy(self.url, timeout=30, what="baseline server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---------------------------------------------------------------- report


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if r["mode"] == "ours"]
    base = report.get("baseline")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    xs = [f"{r['rooms']}x{r['participants']}" for r in runs]
    ax = axes[0]
    ax.bar(xs, [r["cpu_us_per_forwarded_packet"] or 0 for r in runs], color="#2563eb", label="ours")
    if base:
        ax.bar([f"baseline {base['rooms']}x{base['participants']}"], [base["cpu_us_per_forwarded_packet"] or 0],
               color="#dc2626", label="MediaRelay + re-encode")
        ax.set_yscale("log")
    ax.axhline(20, color="black", linestyle="--", linewidth=1, label="target 20 µs")
    ax.set_ylabel("SFU CPU µs per forwarded packet")
    ax.set_title("CPU per forwarded packet")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.bar(xs, [r["forwarded_packets_per_s"] for r in runs], color="#16a34a")
    for x, r in zip(xs, runs):
        ax.annotate(f"{r['server_cpu_cores']:.2f} cores", (x, r["forwarded_packets_per_s"]), ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylabel("forwarded packets/s")
    ax.set_title("throughput (rooms x participants)")
    ax = axes[2]
    lat = [(r["latency_ms"] or {}).get("p99", 0) for r in runs]
    ff = [r["join_to_first_frame_ms"]["p95"] for r in runs]
    loss = [r["loss_pct"] or 0 for r in runs]
    w = 0.28
    idx = range(len(runs))
    ax.bar([i - w for i in idx], lat, width=w, label="latency p99 (ms)")
    ax.bar(list(idx), [f / 10 for f in ff], width=w, label="join→first frame p95 (×10 ms)")
    ax.bar([i + w for i in idx], [lo * 100 for lo in loss], width=w, label="loss (×0.01 %)")
    ax.set_xticks(list(idx), xs)
    ax.set_title("quality")
    ax.legend(fontsize=8)
    fig.suptitle(f"SFU load — {report['machine']['cpu']} ({report['machine']['cores']} cores), "
                 f"loadavg {report['loadavg_start'][0]:.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.media import make_clip

    clips = {"video": make_clip("video", seconds=args.clip_seconds, width=args.width, height=args.height,
                                fps=args.fps, kbps=args.video_kbps),
             "audio": make_clip("audio", seconds=args.clip_seconds)}
    sizes = [int(x) for x in str(args.rooms).split(",") if x.strip()]
    run_id = uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "benchmark": "sfu_load", "machine": machine(), "command": command_line(),
        "loadavg_start": os.getloadavg(),
        "params": {"rooms": sizes, "participants": args.participants, "duration": args.duration, "ramp": args.ramp,
                   "warmup": args.warmup, "workers": args.workers, "baseline": args.baseline,
                   "baseline_rooms": args.baseline_rooms,
                   "video": f"VP8 {args.width}x{args.height}@{args.fps}, clip {clips['video'].bitrate / 1000:.0f} kbps "
                            f"(target {args.video_kbps}), keyframe every 2 s and on PLI",
                   "audio": f"Opus 20 ms, {clips['audio'].bitrate / 1000:.0f} kbps"},
        "runs": [],
    }
    server_cpus, client_cpus = pinning(args)
    report["pinning"] = {"server_cpus": sorted(server_cpus) if server_cpus else "unpinned",
                         "generator_cpus": sorted(client_cpus) if client_cpus else "unpinned",
                         "client_rcvbuf": CLIENT_RCVBUF, "latency_sample": f"1 in {SAMPLE_MASK + 1}"}
    server: Optional[BenchServer] = None
    redis_url = os.environ.get("PEERLEARN_REDIS_URL")
    if args.url:
        base = args.url.rstrip("/")
        pids = [args.server_pid] if args.server_pid else []
    else:
        server = BenchServer(Path(tempfile.mkdtemp(prefix="pl-sfuload-")), args.workers)
        server.start()
        base = server.url
        pids = server.pids()
        if server_cpus:
            for pid in pids:
                pin(pid, server_cpus)
        redis_url = server.env.get("PEERLEARN_REDIS_URL") if args.workers > 1 else None
    try:
        for rooms in sizes:
            result = await run_size(mode="ours", fps=args.fps, base=base, rooms=rooms, participants=args.participants,
                                    duration=args.duration, ramp=args.ramp * rooms, warmup=args.warmup, pids=pids,
                                    clips=clips, redis_url=redis_url, run_id=run_id,
                                    label=f"ours {rooms}x{args.participants}")
            report["runs"].append(result)
    finally:
        if server is not None:
            server.stop()
    if args.baseline:
        bserver = BaselineServer()
        bserver.start()
        if server_cpus:
            pin(bserver.proc.pid, server_cpus)  # type: ignore[union-attr]
        try:
            report["baseline"] = await run_size(
                mode="baseline", fps=args.fps, base=bserver.url, rooms=args.baseline_rooms, participants=args.participants,
                duration=args.duration, ramp=args.ramp, warmup=args.warmup + 5, pids=[bserver.proc.pid],  # type: ignore[union-attr]
                clips=clips, redis_url=None, run_id=run_id, label=f"baseline {args.baseline_rooms}x{args.participants}")
        finally:
            bserver.stop()
        ours = next((r for r in report["runs"] if r["rooms"] == args.baseline_rooms), report["runs"][0])
        b = report["baseline"]
        report["ratio_vs_baseline"] = {
            "compared": f"ours {ours['rooms']}x{ours['participants']} vs baseline {b['rooms']}x{b['participants']}",
            "cpu_per_forwarded_packet": round(b["cpu_us_per_forwarded_packet"] / ours["cpu_us_per_forwarded_packet"], 1)
            if b["cpu_us_per_forwarded_packet"] and ours["cpu_us_per_forwarded_packet"] else None,
            "cpu_per_forwarded_video_stream": round(b["cpu_cores_per_forwarded_video_stream"]
                                                    / ours["cpu_cores_per_forwarded_video_stream"], 1)
            if b["cpu_cores_per_forwarded_video_stream"] and ours["cpu_cores_per_forwarded_video_stream"] else None,
        }
    report["loadavg_end"] = os.getloadavg()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running PeerLearn server (default: start one; needs a high "
                                  "PEERLEARN_AUTH_RATE_LIMIT there, the script registers users)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server process to measure CPU of")
    ap.add_argument("--rooms", default="1,5,10", help="room counts, run one after the other (e.g. 1,5,10)")
    ap.add_argument("--participants", type=int, default=5, help="per room (1 mentor + learners)")
    ap.add_argument("--video-kbps", type=int, default=600)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per room size")
    ap.add_argument("--ramp", type=float, default=1.0, help="seconds between joins ... per room (total ramp = "
                                                            "ramp x rooms)")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the ramp before measuring")
    ap.add_argument("--workers", type=int, default=1, help="server processes (needs redis-server when > 1)")
    ap.add_argument("--server-cpus", default="off", help="CPUs for the server process (taskset list, off, or "
                    "auto: the last core when --workers 1 on >= 2 cores). Only on an otherwise idle machine: "
                    "pinned, the SFU cannot escape other processes on its core (see runqueue_wait_share)")
    ap.add_argument("--client-cpus", default="auto", help="CPUs for this load generator (taskset list, or off); "
                    "auto: the cores the server does not get when the server is pinned")
    ap.add_argument("--latency-sample", type=int, default=8, help="subscribers decrypt 1 packet in N (a power "
                    "of 2) for latency samples; the rest are counted from the SRTP header")
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the MediaRelay re-encoding baseline (default on)")
    ap.add_argument("--baseline-rooms", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0
    random.seed(args.seed)
    global SAMPLE_MASK
    SAMPLE_MASK = max(1, args.latency_sample) - 1
    _, client_cpus = pinning(args)
    if client_cpus:
        pin(os.getpid(), client_cpus)
    report = asyncio.run(main_async(args))
    path = write_report("sfu_load", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2, default=str))
    print(f"report: {path}" + ("" if args.no_plot else f"  plot: {path.with_suffix('.png')}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
