"""Server-side recording: tap the forwarded RTP, dump it, mux it into WebM without transcoding.

Capture (``Recorder``): an RTP tap on the router appends every packet a
producer forwards to that track's dump file (``rtp_dump``), with its arrival
time and the publisher's RTCP sender reports. Writes are buffered in memory
and written by a timer every ``flush_interval`` (a killed process loses at
most that much), fsynced every ``sync_interval``. A write error or a full
disk stops the recording (``on_error``), never the room. While a recording
runs its directory holds an ``flock``-ed ``.lock`` file, so start-up recovery
can tell a live capture (another process) from one a crash left behind.

Finalization (``finalize``; blocking, run it in a thread or process): read
the dumps, unwrap RTX and sequence numbers, reorder, drop duplicates,
depacketize VP8 (RFC 7741) and Opus, drop incomplete frames (and video until
the next keyframe after a loss), map RTP timestamps to one wall clock per
participant (RTCP SR NTP time when every track has one, else arrival time)
and mux one WebM per participant with PyAV, packets as received: no
decoding, no encoding. Matroska cues and duration are written (seekable).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from . import observer as ev
from .rtp_dump import SUFFIX, DumpError, DumpFile, DumpWriter, dumps_in, read_dump

if TYPE_CHECKING:
    from .producer import Producer
    from .router import Router

logger = logging.getLogger(__name__)

META_FILE = "recording.json"
LOCK_FILE = ".lock"
RESULT_FILE = "result.json"
OUTPUT_SUFFIX = ".webm"
#: audio captured before a participant's first video keyframe is dropped when
#: the keyframe comes within this many seconds (the file starts on a keyframe)
KEYFRAME_ALIGN_SECONDS = 3.0

ErrorCallback = Callable[["Recorder", str], Any]


class RecorderError(Exception):
    pass


# ---------------------------------------------------------------- locking


def _lock(directory: Path, *, blocking: bool = False) -> Optional[int]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: Optional[int]) -> None:
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def capture_in_progress(directory: Path) -> bool:
    """True while some live process (this one included) records into ``directory``."""
    if not (directory / LOCK_FILE).exists():
        return False
    fd = _lock(directory)
    if fd is None:
        return True
    _unlock(fd)
    return False


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- capture


def _sync_all(writers: list[DumpWriter]) -> None:
    for writer in writers:
        writer.sync()


@dataclass
class _Track:
    producer: "Producer"
    writer: DumpWriter
    last_sr: Any = None


class Recorder:
    """Records one router into ``directory`` (one dump per track) until ``stop``."""

    def __init__(
        self,
        router: "Router",
        directory: Path,
        *,
        on_error: Optional[ErrorCallback] = None,
        flush_interval: float = 0.25,
        sync_interval: float = 2.0,
        min_free_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.router = router
        self.directory = Path(directory)
        self.on_error = on_error
        self.flush_interval = flush_interval
        self.sync_interval = sync_interval
        self.min_free_bytes = min_free_bytes
        self.clock = router.clock
        self.state = "idle"  # idle | recording | stopped | failed
        self.error = ""
        self.bytes = 0
        self.packets = 0
        self.started_at = 0.0
        self._wall = time.time() - self.clock()
        self._tracks: dict[str, _Track] = {}
        self._ignored: set[str] = set()
        self._count = 0
        self._lock_fd: Optional[int] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._syncing: Optional[asyncio.Future[None]] = None

    # ------------------------------------------------------------ public

    @property
    def recording(self) -> bool:
        return self.state == "recording"

    def start(self, meta: Optional[dict[str, Any]] = None) -> None:
        """Begin capturing (raises OSError if the directory cannot be written)."""
        if self.state != "idle":
            raise RecorderError("a recorder starts once")
        if self.router.closed:
            raise RecorderError("the room is closed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.directory)
        if self._lock_fd is None:
            raise RecorderError("another process records into this directory")
        try:
            self.started_at = time.time()
            _write_json_atomic(self.directory / META_FILE, {
                "room_id": self.router.room_id, "started_at": self.started_at, **(meta or {})})
            _sync_dir(self.directory)
        except BaseException:
            _unlock(self._lock_fd)
            self._lock_fd = None
            raise
        self.state = "recording"
        self.router.observer.add_rtp_tap(self._on_rtp)
        self.router.observer.on(ev.ROUTER_CLOSED, self._on_router_closed)
        self._task = asyncio.ensure_future(self._flush_loop())
        self.router.set_recording(True)

    async def stop(self) -> Path:
        """Stop capturing; every packet received so far is on disk. Idempotent."""
        if self.state == "recording":
            self.state = "stopped"
            self._detach()
            await self._stop_task()
            try:
                for track in self._tracks.values():
                    self.bytes += len(track.writer.buffer)
                    track.writer.close()
            except OSError as exc:
                self._fail(exc)
            finally:
                self._close_all()
        elif self._task is not None:
            await self._stop_task()
        return self.directory

    def stats(self) -> dict[str, Any]:
        return {"state": self.state, "tracks": len(self._tracks), "packets": self.packets,
                "bytes": self.bytes + sum(len(t.writer.buffer) for t in self._tracks.values()),
                "error": self.error}

    # ------------------------------------------------------------ the tap (hot path)

    def _on_rtp(self, producer_id: str, kind: str, data: bytes) -> None:
        track = self._tracks.get(producer_id)
        if track is None:
            if producer_id in self._ignored or self.state != "recording":
                return
            track = self._open(producer_id)
            if track is None:
                return
        now = self.clock() + self._wall
        track.writer.append_rtp(now, data)
        self.packets += 1
        sr = track.producer.last_sr
        if sr is not track.last_sr:
            track.last_sr = sr
            if sr is not None:
                track.writer.append_sr(sr[2] + self._wall, sr[0], sr[1])

    def _open(self, producer_id: str) -> Optional[_Track]:
        producer = next((p for p in self.router.producers if p.id == producer_id), None)
        if producer is None:
            self._ignored.add(producer_id)
            return None
        peer = self.router.peers.get(producer.peer_id)
        info = peer.info if peer is not None else None
        codecs = []
        for c in producer.codecs:
            codecs.append({"pt": c.payloadType, "name": c.name, "clock_rate": c.clockRate,
                           "channels": c.channels, "apt": c.parameters.get("apt")})
        header = {
            "version": 1, "room_id": self.router.room_id, "producer_id": producer.id,
            "peer_id": producer.peer_id, "user_key": producer.user_key,
            "display_name": info.display_name if info else producer.user_key,
            "role": info.role if info else "", "app_data": info.app_data if info else {},
            "kind": producer.kind, "source": producer.source, "clock_rate": producer.clock_rate,
            "ssrc": producer.ssrc, "codecs": codecs, "opened_at": self.clock() + self._wall,
        }
        self._count += 1
        path = self.directory / f"{self._count:03d}-{producer.kind}-{producer.id}{SUFFIX}"
        try:
            writer = DumpWriter(path, json.loads(json.dumps(header, default=str)))
        except OSError as exc:
            self._fail(exc)
            return None
        track = _Track(producer, writer)
        self._tracks[producer_id] = track
        if producer.kind == "video":
            producer.request_keyframe()  # the file starts on a keyframe: don't wait for the next one
        return track

    # ------------------------------------------------------------ background

    async def _flush_loop(self) -> None:
        next_sync = self.clock() + self.sync_interval
        while self.state == "recording":
            await asyncio.sleep(self.flush_interval)
            if self.state != "recording":
                return
            try:
                for track in list(self._tracks.values()):
                    self.bytes += track.writer.flush()
                if self.clock() >= next_sync:
                    next_sync = self.clock() + self.sync_interval
                    writers = [track.writer for track in self._tracks.values()]
                    # fsync off the event loop; stop() waits for it before closing the files
                    self._syncing = asyncio.ensure_future(asyncio.to_thread(_sync_all, writers))
                    await asyncio.shield(self._syncing)
                    free = shutil.disk_usage(self.directory).free
                    if free < self.min_free_bytes:
                        raise OSError(errno.ENOSPC, f"disk almost full ({free // (1024 * 1024)} MB free)")
            except OSError as exc:
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        if self.state == "failed":
            return
        was_recording = self.state == "recording"
        self.state = "failed"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            self.error = f"Recording stopped: the disk is full ({exc.strerror or exc})."
        elif isinstance(exc, OSError):
            self.error = f"Recording stopped: could not write the recording ({exc.strerror or exc})."
        else:
            self.error = f"Recording stopped: {exc}"
        logger.error("room %s: %s", self.router.room_id, self.error)
        self._detach()
        self._close_all()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        if was_recording and self.on_error is not None:
            try:
                result = self.on_error(self, self.error)
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)
            except Exception:  # noqa: BLE001
                logger.exception("recording error callback failed")

    def _detach(self) -> None:
        self.router.observer.remove_rtp_tap(self._on_rtp)
        self.router.observer.off(ev.ROUTER_CLOSED, self._on_router_closed)
        if not self.router.closed:
            self.router.set_recording(False)

    def _close_all(self) -> None:
        for track in self._tracks.values():
            try:
                track.writer.close(sync=False)
            except OSError:
                pass
        _unlock(self._lock_fd)
        self._lock_fd = None

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._syncing is not None:
            await asyncio.gather(self._syncing, return_exceptions=True)

    def _on_router_closed(self, _event: Any) -> Any:
        return self.stop()


# ---------------------------------------------------------------- RTP parsing

_SEQ_TS = struct.Struct("!HI")


@dataclass
class _Packet:
    seq: int  # extended
    ts_raw: int
    marker: bool
    pt: int
    payload: bytes
    arrival: float
    ts: int = 0  # extended


def parse_rtp(data: bytes, rtx_apt: dict[int, int]) -> Optional[tuple[int, int, int, bool, bytes]]:
    """(payload type, seq, timestamp, marker, payload); RTX unwrapped; None for junk/padding."""
    n = len(data)
    if n < 12 or data[0] >> 6 != 2:
        return None
    b0, b1 = data[0], data[1]
    pt = b1 & 0x7F
    seq, ts = _SEQ_TS.unpack_from(data, 2)
    off = 12 + (b0 & 0x0F) * 4
    if b0 & 0x10:
        if off + 4 > n:
            return None
        words = struct.unpack_from("!H", data, off + 2)[0]
        off += 4 + 4 * words
    end = n
    if b0 & 0x20:
        end -= data[-1]
    apt = rtx_apt.get(pt)
    if apt is not None:
        if end - off < 3:
            return None
        seq = struct.unpack_from("!H", data, off)[0]
        off += 2
        pt = apt
    if end <= off:
        return None
    return pt, seq, ts, bool(b1 & 0x80), data[off:end]


def _packets(dump: DumpFile, rtx_apt: dict[int, int]) -> list[_Packet]:
    """Packets in sequence order: extended seq/timestamps, duplicates (RTX repairs) dropped."""
    by_seq: dict[int, _Packet] = {}
    last: Optional[int] = None
    for arrival, data in dump.rtp:
        parsed = parse_rtp(data, rtx_apt)
        if parsed is None:
            continue
        pt, seq, ts, marker, payload = parsed
        if last is None:
            ext = seq
        else:
            ext = last + ((seq - (last & 0xFFFF) + 0x8000) & 0xFFFF) - 0x8000
        if last is None or ext > last:
            last = ext
        if ext not in by_seq:
            by_seq[ext] = _Packet(ext, ts, marker, pt, payload, arrival)
    packets = [by_seq[k] for k in sorted(by_seq)]
    prev_raw = prev_ext = None
    for p in packets:
        if prev_raw is None:
            p.ts = p.ts_raw
        else:
            delta = ((p.ts_raw - prev_raw + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            p.ts = prev_ext + delta  # type: ignore[operator]
        prev_raw, prev_ext = p.ts_raw, p.ts
    return packets


@dataclass
class Frame:
    ts: int  # extended RTP timestamp
    data: bytes
    keyframe: bool
    arrival: float
    time: float = 0.0  # on the participant's wall clock, seconds


def vp8_descriptor_length(p: bytes) -> tuple[bool, int, int]:
    """RFC 7741 payload descriptor: (start of partition, partition index, length); length 0 = junk."""
    if not p:
        return False, 0, 0
    b0 = p[0]
    i = 1
    if b0 & 0x80:
        if len(p) < 2:
            return False, 0, 0
        x = p[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(p) <= i:
                return False, 0, 0
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    if len(p) <= i:
        return False, 0, 0
    return bool(b0 & 0x10), b0 & 0x07, i


def vp8_frame_size(frame: bytes) -> Optional[tuple[int, int]]:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1)."""
    if len(frame) >= 10 and not frame[0] & 1 and frame[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", frame, 6)
        return w & 0x3FFF, h & 0x3FFF
    return None


@dataclass
class VideoStats:
    frames: int = 0
    dropped: int = 0
    keyframes: int = 0


def vp8_frames(packets: list[_Packet], stats: Optional[VideoStats] = None) -> list[Frame]:
    """Whole VP8 frames from packets in sequence order.

    A frame is kept only if it is complete: first packet starts partition 0
    (S=1, PID=0), sequence numbers are contiguous, its last packet has the
    marker bit. After any loss, frames are dropped until the next keyframe so
    every kept frame decodes cleanly; the output begins on a keyframe.
    """
    stats = stats if stats is not None else VideoStats()
    out: list[Frame] = []
    need_key = True
    cur: Optional[list[bytes]] = None
    cur_ts = 0
    cur_arrival = 0.0
    skip_ts: Optional[int] = None
    prev_seq: Optional[int] = None

    def drop() -> None:
        nonlocal cur, need_key
        if cur is not None:
            stats.dropped += 1
        cur = None
        need_key = True

    for p in packets:
        gap = prev_seq is not None and p.seq != prev_seq + 1
        prev_seq = p.seq
        if cur is not None and (gap or p.ts != cur_ts):
            drop()  # the current frame lost its tail (or its marker)
        elif gap:
            need_key = True  # whole packets (maybe frames) lost between frames
        if skip_ts is not None and p.ts == skip_ts and not gap:
            continue
        skip_ts = None
        start, pid, hl = vp8_descriptor_length(p.payload)
        if hl == 0:
            drop()
            skip_ts = p.ts
            continue
        if cur is None:
            if not (start and pid == 0):
                stats.dropped += 1
                need_key = True
                skip_ts = p.ts  # the head of this frame is missing
                continue
            cur, cur_ts, cur_arrival = [], p.ts, p.arrival
        cur.append(p.payload[hl:])
        if p.marker:
            data = b"".join(cur)
            cur = None
            key = bool(data) and not data[0] & 1
            if need_key and not key:
                stats.dropped += 1
                continue
            need_key = False
            stats.frames += 1
            stats.keyframes += key
            out.append(Frame(cur_ts, data, key, cur_arrival))
    if cur is not None:
        stats.dropped += 1
    return out


def opus_duration(payload: bytes) -> int:
    """Samples (48 kHz) in one Opus packet, from its TOC byte (RFC 6716 3.1); 0 if malformed."""
    if not payload:
        return 0
    toc = payload[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        size = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        size = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        size = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(payload) < 2:
            return 0
        count = payload[1] & 0x3F
    return size * count


def retime_opus(packets: list[_Packet]) -> None:
    """Timestamps rebuilt from the packets' own durations (a sender whose RTP clock is not
    48 kHz); a missing sequence number counts as one packet of its neighbour's length."""
    if not packets:
        return
    ts = packets[0].ts
    prev = packets[0]
    for p in packets[1:]:
        step = opus_duration(prev.payload) or 960
        ts += step * max(1, p.seq - prev.seq)
        p.ts = ts
        prev = p


def _clock_agrees(packets: list[_Packet], clock_rate: int) -> bool:
    """Does the RTP clock advance at ``clock_rate`` against arrival time (±25 %)?"""
    span = packets[-1].arrival - packets[0].arrival
    if len(packets) < 20 or span < 1.0:
        return True
    rate = (packets[-1].ts - packets[0].ts) / span
    return 0.75 * clock_rate < rate < 1.25 * clock_rate


def opus_frames(packets: list[_Packet]) -> list[Frame]:
    """One Opus packet per RTP packet; lost packets leave a gap in time, never a step back."""
    out: list[Frame] = []
    last_ts: Optional[int] = None
    for p in packets:
        if last_ts is not None and p.ts <= last_ts:
            continue
        last_ts = p.ts
        out.append(Frame(p.ts, p.payload, True, p.arrival))
    return out


# ---------------------------------------------------------------- finalization


@dataclass
class _TrackData:
    header: dict[str, Any]
    kind: str
    source: str
    codec: str
    clock_rate: int
    frames: list[Frame]
    arrival_offset: float  # wall time of RTP timestamp 0 (least network delay)
    sr_offset: Optional[float]  # sender's NTP time of RTP timestamp 0
    size: Optional[tuple[int, int]] = None
    channels: int = 2
    order: float = 0.0
    dropped: int = 0


def _ntp_seconds(ntp: int) -> float:
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / 4294967296.0


def _load_track(dump: DumpFile) -> Optional[_TrackData]:
    header = dump.header
    codecs = header.get("codecs") or []
    rtx_apt = {int(c["pt"]): int(c["apt"]) for c in codecs if c.get("apt") is not None}
    names = {int(c["pt"]): str(c["name"]).lower() for c in codecs}
    channels = {int(c["pt"]): int(c.get("channels") or 2) for c in codecs}
    packets = _packets(dump, rtx_apt)
    if not packets:
        return None
    kind = str(header.get("kind"))
    codec = names.get(packets[0].pt, "vp8" if kind == "video" else "opus")
    packets = [p for p in packets if names.get(p.pt, codec) == codec]
    clock_rate = int(header.get("clock_rate") or (90000 if kind == "video" else 48000))
    dropped = 0
    if codec == "vp8":
        vstats = VideoStats()
        frames = vp8_frames(packets, vstats)
        dropped = vstats.dropped
    elif codec == "opus":
        if not _clock_agrees(packets, clock_rate):
            logger.warning("%s: RTP clock is not %d Hz; timing from the Opus packets", dump.path.name, clock_rate)
            retime_opus(packets)
        frames = opus_frames(packets)
    else:
        logger.warning("%s: codec %s cannot go into WebM without transcoding; skipped", dump.path.name, codec)
        return None
    if not frames:
        return None
    arrival_offset = min(p.arrival - p.ts / clock_rate for p in packets)
    sr_offset = None
    first = packets[0]
    for _arrival, ntp, sr_rtp in dump.sr:
        if ntp:
            delta = ((sr_rtp - first.ts_raw + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            sr_offset = _ntp_seconds(ntp) - (first.ts + delta) / clock_rate
            break
    size = None
    for f in frames:
        if f.keyframe and codec == "vp8":
            size = vp8_frame_size(f.data)
            if size:
                break
    return _TrackData(header, kind, str(header.get("source") or ("camera" if kind == "video" else "mic")),
                      codec, clock_rate, frames, arrival_offset, sr_offset, size,
                      channels.get(packets[0].pt, 2), order=float(header.get("opened_at") or 0.0),
                      dropped=dropped)


def _place_on_clock(tracks: list[_TrackData]) -> str:
    """Give every frame a time on one clock per participant; returns the method used."""
    method = "arrival"
    offsets = {id(t): t.arrival_offset for t in tracks}
    if len(tracks) > 1 and all(t.sr_offset is not None for t in tracks):
        # sender clock (common to the participant's tracks) -> our clock
        d = min(t.arrival_offset - t.sr_offset for t in tracks)  # type: ignore[operator]
        mapped = {id(t): t.sr_offset + d for t in tracks}  # type: ignore[operator]
        # trust the sender reports only if they agree with arrival times (within 0.5 s)
        if all(abs(mapped[id(t)] - t.arrival_offset) < 0.5 for t in tracks):
            offsets, method = mapped, "rtcp-sr"
    for t in tracks:
        off, rate = offsets[id(t)], t.clock_rate
        for f in t.frames:
            f.time = f.ts / rate + off
    return method


def opus_head(channels: int) -> bytes:
    """The OpusHead identification header WebM wants as CodecPrivate (RFC 7845 5.1)."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, 48000, 0, 0)


@dataclass
class _StreamPlan:
    kind: str
    source: str
    tracks: list[_TrackData] = field(default_factory=list)


def _mux_participant(tracks: list[_TrackData], path: Path) -> dict[str, Any]:
    import av

    method = _place_on_clock(tracks)
    plans: dict[tuple[str, str], _StreamPlan] = {}
    for t in sorted(tracks, key=lambda t: (t.order, t.frames[0].time)):
        plans.setdefault((t.kind, t.source), _StreamPlan(t.kind, t.source)).tracks.append(t)
    audio_start = min((t.frames[0].time for t in tracks if t.kind == "audio"), default=None)
    video_start = min((f.time for t in tracks if t.kind == "video" for f in t.frames if f.keyframe), default=None)
    if video_start is not None and (audio_start is None or 0 <= video_start - audio_start <= KEYFRAME_ALIGN_SECONDS):
        origin = video_start  # keyframe-aligned: the file starts on a video keyframe
    else:
        origin = min(x for x in (audio_start, video_start) if x is not None)  # type: ignore[type-var]

    tmp = path.with_name(path.name + ".part")
    out = av.open(str(tmp), mode="w", format="webm")
    items: list[tuple[float, int, Frame, Any, int]] = []
    streams_meta = []
    try:
        for key in sorted(plans, key=lambda k: (k[0] != "video", k[1])):
            plan = plans[key]
            if plan.kind == "video":
                size = next((t.size for t in plan.tracks if t.size), None) or (640, 480)
                stream = out.add_stream("libvpx", rate=30)
                stream.width, stream.height = size
                stream.pix_fmt = "yuv420p"
            else:
                channels = max(t.channels for t in plan.tracks)
                stream = out.add_stream("libopus", rate=48000)
                stream.layout = "stereo" if channels >= 2 else "mono"
                stream.codec_context.extradata = opus_head(2 if channels >= 2 else 1)
            stream.metadata["title"] = plan.source
            last = -1
            count = 0
            for t in plan.tracks:
                need_key = plan.kind == "video"
                for f in t.frames:
                    if f.time < origin - 1e-6:
                        continue
                    if need_key and not f.keyframe:
                        continue  # a new segment (reconnect) starts on a keyframe too
                    need_key = False
                    pts = round((f.time - origin) * t.clock_rate)
                    if pts <= last:
                        continue  # timestamps stay monotonic across segments
                    last = pts
                    items.append((f.time, len(items), f, stream, t.clock_rate))
                    count += 1
            streams_meta.append({"kind": plan.kind, "source": plan.source,
                                 "codec": "vp8" if plan.kind == "video" else "opus", "frames": count,
                                 "dropped": sum(t.dropped for t in plan.tracks)})
        items.sort(key=lambda x: (x[0], x[1]))
        end = 0.0
        for ftime, _, f, stream, rate in items:
            pkt = av.Packet(f.data)
            pkt.stream = stream
            pkt.time_base = Fraction(1, rate)
            pkt.pts = pkt.dts = round((ftime - origin) * rate)
            if stream.type == "audio":
                pkt.duration = 960 if rate == 48000 else 0
            pkt.is_keyframe = f.keyframe
            out.mux(pkt)
            end = max(end, ftime - origin + (0.02 if stream.type == "audio" else 1 / 30))
    finally:
        out.close()
    os.replace(tmp, path)
    return {"origin": origin, "duration_ms": round(end * 1000), "streams": streams_meta, "sync": method}


def finalize(directory: Path, *, remove_dumps: bool = True) -> dict[str, Any]:
    """Mux a recording's dumps into one WebM per participant (blocking; no transcoding).

    Returns ``{"files": [...], "participants": [...], "bytes", "duration_ms"}``
    and writes it to ``result.json``. Safe to run again on the same directory
    (after a crash during finalization). Raises RecorderError if nothing
    playable was captured.
    """
    directory = Path(directory)
    done = directory / RESULT_FILE
    if done.exists():  # finalized before (maybe killed while removing the dumps)
        if remove_dumps:
            for path in dumps_in(directory):
                path.unlink(missing_ok=True)
        return json.loads(done.read_text())  # type: ignore[no-any-return]
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        meta = {}
    by_user: dict[str, list[_TrackData]] = {}
    names: dict[str, dict[str, Any]] = {}
    truncated = 0
    for path in dumps_in(directory):
        try:
            dump = read_dump(path)
        except (DumpError, OSError) as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        truncated += dump.truncated
        track = _load_track(dump)
        if track is None:
            continue
        key = str(dump.header.get("user_key"))
        by_user.setdefault(key, []).append(track)
        names.setdefault(key, {"user_key": key, "display_name": dump.header.get("display_name") or key,
                               "role": dump.header.get("role") or "",
                               "app_data": dump.header.get("app_data") or {}})
    if not by_user:
        raise RecorderError("nothing was recorded")
    started = float(meta.get("started_at") or 0.0)
    files = []
    for key in sorted(by_user, key=lambda k: min(t.order for t in by_user[k])):
        info = names[key]
        safe = "".join(ch for ch in key if ch.isalnum() or ch in "-_")[:40] or "participant"
        path = directory / f"participant-{len(files) + 1}-{safe}{OUTPUT_SUFFIX}"
        muxed = _mux_participant(by_user[key], path)
        files.append({
            "index": len(files), "name": path.name, "user_key": key, "display_name": info["display_name"],
            "role": info["role"], "app_data": info["app_data"], "bytes": path.stat().st_size,
            "duration_ms": muxed["duration_ms"], "streams": muxed["streams"], "sync": muxed["sync"],
            "offset_ms": max(0, round((muxed["origin"] - started) * 1000)) if started else 0,
        })
    duration_ms = max(f["offset_ms"] + f["duration_ms"] for f in files)
    result = {"files": files, "participants": [{k: f[k] for k in ("user_key", "display_name", "role")}
                                               for f in files],
              "bytes": sum(f["bytes"] for f in files), "duration_ms": duration_ms,
              "started_at": started or None, "truncated_dumps": truncated}
    _write_json_atomic(done, result)
    if remove_dumps:
        for path in dumps_in(directory):
            path.unlink(missing_ok=True)
    return result
