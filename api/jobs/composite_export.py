"""Composite export: a finished recording's participant WebMs -> one MP4 with a grid.

This decodes and encodes, so it never runs in the SFU's event loop: call
``export_composite`` in a separate process (``ProcessPoolExecutor`` or the
``peerlearn recordings export`` command). Video: H.264 (libx264) when PyAV
has it, else MPEG-4 part 2; audio: AAC, every participant mixed. Layout: a
grid of the participants present; with three or more, the one speaking
loudest in each second gets the large tile (active speaker).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Optional, cast

import numpy as np

Progress = Callable[[float], None]


def video_codec() -> tuple[Literal["libx264", "mpeg4"], str]:
    """(encoder, note): libx264 if available, else mpeg4 (said so in the note)."""
    import av

    if "libx264" in av.codecs_available:
        return "libx264", "h264"
    return "mpeg4", "libx264 not available in this PyAV build: MPEG-4 part 2 video instead of H.264"


def _frames(path: Path, offset: float, w: int, h: int) -> Iterator[tuple[float, np.ndarray]]:
    """(time on the recording clock, rgb24 ndarray w x h) for every decodable frame."""
    import av

    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError):
        return
    with container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # A demuxed stream always has a time base (PyAV types it optional for new streams).
        time_base = cast(Fraction, stream.time_base)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = offset + float(frame.pts * time_base)
                img = frame.to_ndarray(width=w, height=h, format="rgb24")
                yield t, img
        except av.FFmpegError:
            return


def _audio(path: Path, offset: float, total: int, rate: int = 48000) -> Optional[np.ndarray]:
    """A participant's audio on the recording clock: mono float32, ``total`` samples."""
    import av

    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError):
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        out = np.zeros(total, dtype=np.float32)
        # A demuxed stream always has a time base (PyAV types it optional for new streams).
        time_base = cast(Fraction, stream.time_base)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                start = int(round((offset + float(frame.pts * time_base)) * rate))
                for res in resampler.resample(frame):
                    data = res.to_ndarray().reshape(-1)
                    lo, hi = max(0, start), min(total, start + len(data))
                    if hi > lo:
                        out[lo:hi] += data[lo - start : hi - start]
                    start += len(data)
        except av.FFmpegError:
            pass
    return out


def _grid(n: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tw, th = (w // cols) & ~1, (h // rows) & ~1
    return [((i % cols) * tw, (i // cols) * th, tw, th) for i in range(n)]


def _speaker_layout(n: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Tile 0 large (top 3/4 of the width), the others in a column on the right."""
    big_w = (w * 3 // 4) & ~1
    side_w = (w - big_w) & ~1
    side_h = (h // max(1, n - 1)) & ~1
    tiles = [(0, (h - h * 3 // 4) // 2 & ~1, big_w, (h * 3 // 4) & ~1)]
    tiles += [(big_w, i * side_h, side_w, min(side_h, (side_w * 3 // 4) & ~1)) for i in range(n - 1)]
    return tiles


def export_composite(
    directory: Path,
    files: Sequence[Mapping[str, Any]],
    out_path: Path,
    *,
    progress: Optional[Progress] = None,
    progress_file: Optional[Path] = None,
    width: int = 640,
    height: int = 360,
    fps: int = 15,
) -> dict[str, Any]:
    """Write ``out_path`` (MP4). ``files`` are the recording's file entries (name, offset_ms, duration_ms)."""
    import av

    directory = Path(directory)

    def report(value: float) -> None:
        if progress is not None:
            progress(value)
        if progress_file is not None:
            tmp = progress_file.with_name(progress_file.name + ".tmp")
            tmp.write_text(json.dumps({"progress": round(value, 4)}))
            os.replace(tmp, progress_file)

    report(0.0)
    entries = [f for f in files if (directory / f["name"]).exists()]
    if not entries:
        raise FileNotFoundError("the recording has no files to export")
    duration = max((f.get("offset_ms", 0) + f.get("duration_ms", 0)) / 1000 for f in entries)
    duration = max(duration, 1.0 / fps)
    rate = 48000
    total = int(duration * rate) + rate // fps

    # audio first (cheap): the mix, and who is loudest each second
    tracks = []
    for f in entries:
        track = _audio(directory / f["name"], f.get("offset_ms", 0) / 1000, total, rate)
        tracks.append(track)
    report(0.1)
    mix = np.zeros(total, dtype=np.float32)
    seconds = int(math.ceil(total / rate))
    loud = np.zeros((len(entries), seconds), dtype=np.float32)
    for i, track in enumerate(tracks):
        if track is None:
            continue
        mix += track
        padded = np.zeros(seconds * rate, dtype=np.float32)
        padded[: len(track)] = track
        loud[i] = np.sqrt(np.mean(padded.reshape(seconds, rate) ** 2, axis=1))
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 1.0:
        mix /= peak

    encoder, codec_note = video_codec()
    tmp = out_path.with_name(out_path.name + ".part")
    out = av.open(str(tmp), mode="w", format="mp4")
    try:
        vstream = out.add_stream(encoder, rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        if encoder == "libx264":
            vstream.options = {"preset": "veryfast", "crf": "26"}
        else:
            vstream.bit_rate = 800_000
        astream = out.add_stream("aac", rate=rate)
        astream.layout = "mono"

        n = len(entries)
        use_speaker = n >= 3
        grid = _grid(n, width, height)
        sizes = {(tw, th) for _x, _y, tw, th in grid}
        if use_speaker:
            sizes |= {(tw, th) for _x, _y, tw, th in _speaker_layout(n, width, height)}
        # one decoder per participant per tile size in use, advanced in step with the clock
        sources: list[dict[tuple[int, int], Any]] = []
        for f in entries:
            by_size = {}
            for tw, th in sizes:
                by_size[(tw, th)] = {
                    "it": _frames(directory / f["name"], f.get("offset_ms", 0) / 1000, tw, th),
                    "next": None,
                    "cur": None,
                    "done": False,
                }
            sources.append(by_size)

        def frame_at(src: dict[str, Any], t: float) -> Optional[np.ndarray]:
            while not src["done"]:
                if src["next"] is None:
                    try:
                        src["next"] = next(src["it"])
                    except StopIteration:
                        src["done"] = True
                        break
                if src["next"][0] <= t:
                    src["cur"], src["next"] = src["next"][1], None
                else:
                    break
            return src["cur"]  # type: ignore[no-any-return]

        frames_total = int(duration * fps) + 1
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        for k in range(frames_total):
            t = k / fps
            canvas[:] = 24
            second = min(seconds - 1, int(t))
            order = list(range(n))
            layout = grid
            if use_speaker and loud[:, second].max() > 0.01:
                speaker = int(np.argmax(loud[:, second]))
                order = [speaker] + [i for i in range(n) if i != speaker]
                layout = _speaker_layout(n, width, height)
            for tile, i in zip(layout, order):
                x, y, tw, th = tile
                img = frame_at(sources[i][(tw, th)], t)
                for size, src in sources[i].items():
                    if size != (tw, th):
                        frame_at(src, t)  # keep the other sizes in step
                if img is not None:
                    canvas[y : y + th, x : x + tw] = img
            vf = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            vf.pts, vf.time_base = k, Fraction(1, fps)
            for packet in vstream.encode(vf):
                out.mux(packet)
            if k % fps == 0:
                report(0.1 + 0.85 * k / frames_total)
        for packet in vstream.encode(None):
            out.mux(packet)

        chunk = 1024
        pcm = (mix * 32767).astype(np.int16)
        for start in range(0, len(pcm), chunk * 16):
            part = pcm[start : start + chunk * 16]
            af = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
            for packet in astream.encode(af):
                out.mux(packet)
        for packet in astream.encode(None):
            out.mux(packet)
    finally:
        out.close()
    os.replace(tmp, out_path)
    report(1.0)
    return {
        "file": out_path.name,
        "bytes": out_path.stat().st_size,
        "codec": "h264" if encoder == "libx264" else "mpeg4",
        "note": "" if encoder == "libx264" else codec_note,
        "duration_ms": round(duration * 1000),
        "layout": "speaker" if n >= 3 else "grid",
        "participants": n,
    }
