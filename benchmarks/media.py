"""Encode once, replay forever: the load clients' media.

``make_clip`` encodes a few seconds of synthetic 640x480 video (VP8, moving
pattern + noise so the encoder produces realistic packet sizes) and a tone
with noise (Opus, 20 ms) with PyAV, once, and keeps the encoded packets as
bytes. ``ReplayTrack`` hands those encoded frames to aiortc as ``av.Packet``
objects at real-time pace, which aiortc's sender only packetizes (its
pass-through ``pack()`` path): no encoder runs in the load generator. A
keyframe request (PLI/FIR) from the SFU makes the video replay jump to the
clip's next keyframe, the way a live encoder answers it. Clips are cached in
``benchmarks/results/clips/``.
"""

from __future__ import annotations

import asyncio
import fractions
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

CLIPS = Path(__file__).parent / "results" / "clips"
VIDEO_RATE = 90000
AUDIO_RATE = 48000


@dataclass
class Clip:
    kind: str
    frames: list[tuple[bytes, int, bool]]  # (encoded bytes, pts in clock units, keyframe)
    clock_rate: int
    frame_ticks: int  # pts step per frame
    duration: float

    @property
    def keyframes(self) -> list[int]:
        return [i for i, f in enumerate(self.frames) if f[2]]

    @property
    def bitrate(self) -> float:
        return sum(len(f[0]) for f in self.frames) * 8 / self.duration


def _encode_video(seconds: float, width: int, height: int, fps: int, kbps: int, gop: int) -> Clip:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.bit_rate = kbps * 1000
    codec.gop_size = gop
    codec.qmin, codec.qmax = 2, 56
    # aiortc's own VP8 settings (CBR: minrate = maxrate = bit_rate), so the clip looks like a live sender's
    codec.options = {
        "bufsize": str(kbps * 1000),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(kbps * 1000),
        "maxrate": str(kbps * 1000),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    rng = np.random.default_rng(7)
    frames: list[tuple[bytes, int, bool]] = []
    n = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n):
        img = ((xx + 4 * i) % 256 ^ (yy + 2 * i) % 256).astype(np.uint8)
        img = np.stack([img, np.roll(img, i * 3, axis=1), 255 - img], axis=-1)
        img = (img.astype(np.int16) + rng.integers(-3, 4, img.shape)).clip(0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        frame.time_base = codec.time_base
        for packet in codec.encode(frame):
            frames.append((bytes(packet), int(packet.pts) * (VIDEO_RATE // fps), bool(packet.is_keyframe)))
    for packet in codec.encode(None):
        frames.append((bytes(packet), int(packet.pts) * (VIDEO_RATE // fps), bool(packet.is_keyframe)))
    return Clip("video", frames, VIDEO_RATE, VIDEO_RATE // fps, n / fps)


def _encode_audio(seconds: float) -> Clip:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, AUDIO_RATE)
    rng = np.random.default_rng(3)
    per = AUDIO_RATE // 50
    frames: list[tuple[bytes, int, bool]] = []
    pts = 0
    for i in range(int(seconds * 50)):
        t = (np.arange(per) + i * per) / AUDIO_RATE
        mono = np.sin(2 * np.pi * (220 + 40 * np.sin(t)) * t) * 8000 + rng.normal(0, 900, per)
        data = np.repeat(mono.astype(np.int16), 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, pts, codec.time_base
        pts += per
        for packet in codec.encode(frame):
            frames.append((bytes(packet), int(packet.pts or 0), True))
    return Clip("audio", frames, AUDIO_RATE, per, len(frames) / 50)


def make_clip(
    kind: str,
    *,
    seconds: float = 10.0,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    kbps: int = 600,
    gop: int = 60,
) -> Clip:
    """The cached clip for these parameters, encoded now if missing."""
    name = f"video-{width}x{height}-{fps}-{kbps}k-{gop}-{seconds:g}s" if kind == "video" else f"audio-opus-{seconds:g}s"
    path = CLIPS / f"{name}.pickle"
    if path.exists():
        return Clip(**pickle.loads(path.read_bytes()))  # noqa: S301 - our own cache
    clip = _encode_video(seconds, width, height, fps, kbps, gop) if kind == "video" else _encode_audio(seconds)
    CLIPS.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(vars(clip)))
    return clip


class ReplayTrack(MediaStreamTrack):
    """Returns the clip's encoded frames as ``av.Packet`` at real-time pace, looping."""

    def __init__(self, clip: Clip, *, start: int = 0) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self._index = start % len(clip.frames)
        self._loops = 0
        self._t0: float | None = None
        self._sent = 0
        self._time_base = fractions.Fraction(1, clip.clock_rate)
        self._jump = False
        self.frames_sent = 0

    def request_keyframe(self) -> None:
        self._jump = True

    async def recv(self) -> av.Packet:
        clip = self.clip
        if self._t0 is None:
            self._t0 = time.monotonic()
        wait = self._t0 + self._sent * clip.frame_ticks / clip.clock_rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._jump:
            self._jump = False
            keys = clip.keyframes
            nxt = next((k for k in keys if k >= self._index), None)
            if nxt is None:
                self._loops += 1
                nxt = keys[0]
            self._index = nxt
        data, _pts, _key = clip.frames[self._index]
        packet = av.Packet(data)
        packet.pts = self._sent * clip.frame_ticks
        packet.time_base = self._time_base
        self._sent += 1
        self.frames_sent += 1
        self._index += 1
        if self._index >= len(clip.frames):
            self._index = 0
            self._loops += 1
        return packet


if __name__ == "__main__":
    for k in ("video", "audio"):
        t = time.process_time()
        c = make_clip(k)
        print(
            k,
            len(c.frames),
            "frames",
            f"{c.bitrate / 1000:.0f} kbps",
            "keyframes",
            c.keyframes[:5],
            f"{time.process_time() - t:.1f}s cpu",
        )
