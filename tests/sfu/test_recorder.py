"""Recorder: RTP dumps written as packets arrive, muxed into WebM without transcoding."""

from __future__ import annotations

import asyncio
import fractions
import struct
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from sfu import Router
from sfu.recording import RESULT_FILE, Recorder, RecorderError, capture_in_progress, finalize
from sfu.recording.depacketize import vp8_descriptor_length
from sfu.recording.rtp_dump import DumpWriter, dumps_in, read_dump

VP8_PT, OPUS_PT, RTX_PT = 96, 111, 97


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def video_packets(
    seconds: float, *, fps: int = 30, seq0: int = 65500, ts0: int = 4294000000, t0: float = 1000.0
) -> list[tuple[float, bytes, bool]]:
    """(arrival, RTP packet, starts a keyframe) for a synthetic VP8 stream; seq and ts wrap."""
    enc = Vp8Encoder()
    out = []
    seq = seq0
    for i in range(int(seconds * fps)):
        img = np.full((48, 64, 3), 60, dtype=np.uint8)
        img[:, (i * 2) % 64] = 250
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, _ = enc.encode(frame, force_keyframe=(i % 30 == 0))
        ts = ts0 + i * 3000
        for j, payload in enumerate(payloads):
            out.append(
                (
                    t0 + i / fps + 0.002 * j,
                    rtp(VP8_PT, seq, ts, 1111, payload, j == len(payloads) - 1),
                    i % 30 == 0 and j == 0,
                )
            )
            seq += 1
    return out


def audio_packets(seconds: float, *, t0: float = 1000.0, ts0: int = 123456) -> list[tuple[float, bytes]]:
    enc = OpusEncoder()
    out = []
    for i in range(int(seconds * 50)):
        t = (np.arange(960) + i * 960) / 48000
        data = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, _ = enc.encode(frame)
        out.append((t0 + i * 0.02, rtp(OPUS_PT, 100 + i, ts0 + i * 960, 2222, payloads[0])))
    return out


def write_dump(path: Path, kind: str, packets: list[tuple[float, bytes]], user: str = "7") -> None:
    codecs = (
        [
            {"pt": VP8_PT, "name": "VP8", "clock_rate": 90000, "channels": None, "apt": None},
            {"pt": RTX_PT, "name": "rtx", "clock_rate": 90000, "channels": None, "apt": VP8_PT},
        ]
        if kind == "video"
        else [{"pt": OPUS_PT, "name": "opus", "clock_rate": 48000, "channels": 2, "apt": None}]
    )
    writer = DumpWriter(
        path,
        {
            "version": 1,
            "producer_id": path.stem,
            "user_key": user,
            "display_name": "Ann",
            "kind": kind,
            "source": "camera" if kind == "video" else "mic",
            "clock_rate": 90000 if kind == "video" else 48000,
            "codecs": codecs,
            "opened_at": packets[0][0],
        },
    )
    for arrival, data in packets:
        writer.append_rtp(arrival, data)
    writer.close()


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        v = next(s for s in c.streams if s.type == "video")
        a = next(s for s in c.streams if s.type == "audio")
        info = {
            "video": v.codec_context.name,
            "audio": a.codec_context.name,
            "duration": c.duration / 1e6 if c.duration else 0.0,
        }
        video_pts = []
        audio_pts = []
        for packet in c.demux(v, a):
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            (video_pts if packet.stream.type == "video" else audio_pts).append(t)
        info["video_start"], info["audio_start"] = min(video_pts), min(audio_pts)
    with av.open(str(path)) as c:
        info["frames"] = sum(1 for _ in c.decode(video=0))
        info["packets"] = len(video_pts)
    with av.open(str(path)) as c:
        info["audio_frames"] = sum(1 for _ in c.decode(audio=0))
    with av.open(str(path)) as c:
        c.seek(int(info["duration"] / 2 * 1e6))
        info["after_seek"] = next(iter(c.decode(video=0))).time
    return info


def test_synthetic_stream_with_wraparound_muxes_without_transcoding(tmp_path: Path) -> None:
    video = video_packets(3.0)
    audio = audio_packets(3.0)
    write_dump(tmp_path / "001-video.rtpd", "video", [(a, d) for a, d, _ in video])
    write_dump(tmp_path / "002-audio.rtpd", "audio", audio)
    result = finalize(tmp_path)
    assert not dumps_in(tmp_path)  # dumps go once the WebM is there
    [entry] = result.files
    info = probe(tmp_path / entry.name)
    assert (info["video"], info["audio"]) == ("vp8", "opus")
    assert info["frames"] == info["packets"] == 90  # every frame kept and decodable
    assert info["audio_frames"] >= 140
    assert abs(info["duration"] - 3.0) < 0.2
    assert abs(info["video_start"] - info["audio_start"]) < 0.1
    assert 0.9 < info["after_seek"] <= 1.5  # lands on the keyframe at 1 s (cues)
    assert abs(entry.duration_ms - 3000) < 200
    # finalizing again returns the same result (recovery after a crash mid-finalization)
    assert finalize(tmp_path) == result


def test_loss_drops_incomplete_frames_until_keyframe_and_rtx_repairs(tmp_path: Path) -> None:
    video = video_packets(3.0)
    # lose one packet of frame 40 (no RTX): frames 40..59 cannot decode cleanly and are dropped
    frame_starts = [i for i, (_a, _d, _k) in enumerate(video) if video[i][1][1] & 0x80 or i == 0]
    lost_index = frame_starts[40] + 1 if frame_starts[40] + 1 < len(video) else frame_starts[40]
    # lose one packet early but repair it by RTX (arrives late, wrapped in an RTX payload)
    repaired = 10
    arrival, data, _ = video[repaired]
    osn = data[2:4]
    rtx = bytes([data[0], (data[1] & 0x80) | RTX_PT]) + b"\x00\x01" + data[4:12] + osn + data[12:]
    packets = [(a, d) for i, (a, d, _) in enumerate(video) if i not in (lost_index, repaired)]
    packets.append((arrival + 0.05, rtx))
    packets.append((arrival + 0.06, rtx))  # a duplicate repair is ignored
    write_dump(tmp_path / "001-video.rtpd", "video", packets)
    write_dump(tmp_path / "002-audio.rtpd", "audio", [p for i, p in enumerate(audio_packets(3.0)) if i % 17])
    result = finalize(tmp_path)
    info = probe(tmp_path / result.files[0].name)
    assert info["frames"] == info["packets"]  # everything kept decodes
    assert 60 <= info["packets"] < 90  # the damaged GOP's tail is gone, the rest is there
    assert result.files[0].streams[0].dropped > 0


def test_truncated_dump_from_a_killed_writer_is_finalized(tmp_path: Path) -> None:
    write_dump(tmp_path / "001-video.rtpd", "video", [(a, d) for a, d, _ in video_packets(2.0)])
    write_dump(tmp_path / "002-audio.rtpd", "audio", audio_packets(2.0))
    path = tmp_path / "001-video.rtpd"
    path.write_bytes(path.read_bytes()[:-7])  # killed in the middle of a record
    assert read_dump(path).truncated
    result = finalize(tmp_path)
    info = probe(tmp_path / result.files[0].name)
    assert info["frames"] >= 55


def test_nothing_recorded_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecorderError):
        finalize(tmp_path)


def test_vp8_descriptor_lengths() -> None:
    assert vp8_descriptor_length(bytes([0x10, 0xAA])) == (True, 0, 1)
    assert vp8_descriptor_length(bytes([0x90, 0x80, 0x81, 0x02, 0xAA])) == (True, 0, 4)  # 15-bit picture id
    assert vp8_descriptor_length(bytes([0x80, 0xE0, 0x05, 0x01, 0x20, 0xAA])) == (False, 0, 5)
    assert vp8_descriptor_length(b"") == (False, 0, 0)


async def _wait(predicate: Any, timeout: float = 20.0) -> None:
    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


async def test_live_room_recording(router: Router, make_client: Any, tmp_path: Path) -> None:
    a = await make_client("alice", tone=True)
    b = await make_client("bob", tone=True)
    await a.wait_frames(b.peer_id, "camera", 5)
    recorder = Recorder(router, tmp_path / "rec")
    recorder.start()
    assert capture_in_progress(tmp_path / "rec")
    await a.wait_message("recording", lambda m: m["on"] is True)
    await _wait(lambda: recorder.packets > 300)
    await asyncio.sleep(1.5)  # record a known span (not a timing assertion)
    await recorder.stop()
    assert not capture_in_progress(tmp_path / "rec")
    await b.wait_message("recording", lambda m: m["on"] is False)
    result = await asyncio.to_thread(finalize, tmp_path / "rec")
    assert {f.display_name for f in result.files} == {"alice", "bob"}
    for entry in result.files:
        info = probe(tmp_path / "rec" / entry.name)
        assert (info["video"], info["audio"]) == ("vp8", "opus")
        assert info["frames"] == info["packets"] > 10
        assert abs(info["video_start"] - info["audio_start"]) < 0.1
    assert (tmp_path / "rec" / RESULT_FILE).exists()


async def test_write_error_fails_the_recording_not_the_room(
    router: Router, make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await make_client("alice")
    b = await make_client("bob")
    await a.wait_frames(b.peer_id, "camera", 3)
    errors: list[str] = []
    recorder = Recorder(router, tmp_path / "rec", on_error=lambda _r, msg: errors.append(msg))
    recorder.start()
    await _wait(lambda: recorder.packets > 50)

    def full(*_args: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DumpWriter, "_write", full)
    await _wait(lambda: recorder.state == "failed")
    assert errors and "disk is full" in errors[0]
    await a.wait_message("recording", lambda m: m["on"] is False)
    assert not router.observer.rtp_taps
    await a.wait_frames(b.peer_id, "camera", 10)  # the room keeps forwarding
    await recorder.stop()


def test_a_recording_continued_after_its_process_died_is_one_file_with_the_gap_marked(tmp_path: Path) -> None:
    """The worker holding the class died 2 s in; the class went on on another worker 8 s later:
    one WebM per participant spans both parts (no second recording) and the gap is reported."""
    import json
    import os

    from sfu.recording.storage import META_FILE, continued_meta, write_json_atomic

    write_json_atomic(tmp_path / META_FILE, {"recording_id": 5, "started_at": 1000.0})
    write_dump(tmp_path / "001-video.rtpd", "video", [(a, d) for a, d, _ in video_packets(2.0, t0=1000.0)])
    write_dump(tmp_path / "002-audio.rtpd", "audio", audio_packets(2.0, t0=1000.0))
    for dump in dumps_in(tmp_path):
        os.utime(dump, (1002.0, 1002.0))  # the dead process's last write
    # the new worker's capture goes on in the same directory
    meta = continued_meta(tmp_path, 1010.0, {"recording_id": 5, "started_at": 1010.0})
    assert meta is not None and meta["started_at"] == 1000.0
    write_json_atomic(tmp_path / META_FILE, meta)
    later = video_packets(2.0, t0=1010.0, seq0=7, ts0=99)
    write_dump(tmp_path / "003-video.rtpd", "video", [(a, d) for a, d, _ in later])
    write_dump(tmp_path / "004-audio.rtpd", "audio", audio_packets(2.0, t0=1010.0, ts0=5))
    result = finalize(tmp_path)
    [entry] = result.files
    assert result.gaps == [{"start_ms": 2000, "end_ms": 10000}]
    info = probe(tmp_path / entry.name)
    assert info["frames"] == info["packets"] == 120  # both parts, every frame decodable
    assert abs(info["duration"] - 12.0) < 0.3  # the gap keeps its place on the timeline
    assert json.loads((tmp_path / RESULT_FILE).read_text())["gaps"] == result.gaps
    assert finalize(tmp_path) == result
