"""One participant's tracks onto one clock and into one WebM, packets as received.

RTP timestamps map to one wall clock per participant (RTCP SR NTP time when
every track has one, else arrival time); PyAV muxes VP8 and Opus without
decoding or encoding; Matroska cues and duration are written (seekable).
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

from ..rtp.vp8 import vp8_frame_size
from .depacketize import (
    Frame,
    VideoStats,
    clock_agrees,
    opus_frames,
    packets_of,
    retime_opus,
    unwrap_red,
    vp8_frames,
)
from .rtp_dump import DumpFile

logger = logging.getLogger(__name__)

#: audio captured before a participant's first video keyframe is dropped when
#: the keyframe comes within this many seconds (the file starts on a keyframe)
KEYFRAME_ALIGN_SECONDS = 3.0


@dataclass
class TrackData:
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


def load_track(dump: DumpFile) -> Optional[TrackData]:
    header = dump.header
    codecs = header.get("codecs") or []
    rtx_apt = {int(c["pt"]): int(c["apt"]) for c in codecs if c.get("apt") is not None}
    names = {int(c["pt"]): str(c["name"]).lower() for c in codecs}
    channels = {int(c["pt"]): int(c.get("channels") or 2) for c in codecs}
    packets, _recovered = unwrap_red(packets_of(dump, rtx_apt), {pt for pt, name in names.items() if name == "red"})
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
        if not clock_agrees(packets, clock_rate):
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
    return TrackData(
        header,
        kind,
        str(header.get("source") or ("camera" if kind == "video" else "mic")),
        codec,
        clock_rate,
        frames,
        arrival_offset,
        sr_offset,
        size,
        channels.get(packets[0].pt, 2),
        order=float(header.get("opened_at") or 0.0),
        dropped=dropped,
    )


def place_on_clock(tracks: list[TrackData]) -> str:
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
    tracks: list[TrackData] = field(default_factory=list)


def mux_participant(tracks: list[TrackData], path: Path) -> dict[str, Any]:
    import av

    method = place_on_clock(tracks)
    plans: dict[tuple[str, str], _StreamPlan] = {}
    for t in sorted(tracks, key=lambda t: (t.order, t.frames[0].time)):
        plans.setdefault((t.kind, t.source), _StreamPlan(t.kind, t.source)).tracks.append(t)
    audio_start = min((t.frames[0].time for t in tracks if t.kind == "audio"), default=None)
    video_start = min((f.time for t in tracks if t.kind == "video" for f in t.frames if f.keyframe), default=None)
    if video_start is not None and (audio_start is None or 0 <= video_start - audio_start <= KEYFRAME_ALIGN_SECONDS):
        origin = video_start  # keyframe-aligned: the file starts on a video keyframe
    else:
        origin = min(x for x in (audio_start, video_start) if x is not None)

    tmp = path.with_name(path.name + ".part")
    out = av.open(str(tmp), mode="w", format="webm")
    items: list[tuple[float, int, Frame, Any, int]] = []
    streams_meta = []
    try:
        for key in sorted(plans, key=lambda k: (k[0] != "video", k[1])):
            plan = plans[key]
            stream: Any
            if plan.kind == "video":
                size = next((t.size for t in plan.tracks if t.size), None) or (640, 480)
                video = out.add_stream("libvpx", rate=30)
                video.width, video.height = size
                video.pix_fmt = "yuv420p"
                stream = video
            else:
                channels = max(t.channels for t in plan.tracks)
                audio = out.add_stream("libopus", rate=48000)
                audio.layout = "stereo" if channels >= 2 else "mono"
                audio.codec_context.extradata = opus_head(2 if channels >= 2 else 1)
                stream = audio
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
            streams_meta.append(
                {
                    "kind": plan.kind,
                    "source": plan.source,
                    "codec": "vp8" if plan.kind == "video" else "opus",
                    "frames": count,
                    "dropped": sum(t.dropped for t in plan.tracks),
                }
            )
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
