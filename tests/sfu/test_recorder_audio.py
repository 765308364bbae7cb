"""A recording of a Chromium publisher's audio: Opus wrapped in RED (RFC 2198), with DTX
silences (a packet every 400 ms, sequence numbers continuous, timestamps jumping) and loss
on the way in. The WebM must hold plain Opus at the right times (no desync after a silence),
with the frames lost on the uplink recovered from the next packet's redundant copy."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder

from sfu.recording import finalize
from sfu.rtp import red
from tests.sfu.test_recorder import OPUS_PT, rtp, video_packets, write_dump

RED_PT = 63
SILENT = range(50, 100)  # 1.0-2.0 s: silence, DTX sends one frame in 20


def opus_frames(seconds: float) -> list[bytes]:
    enc = OpusEncoder()
    out = []
    for i in range(int(seconds * 50)):
        t = (np.arange(960) + i * 960) / 48000
        data = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, fractions.Fraction(1, 48000)
        payloads, _ = enc.encode(frame)
        out.append(payloads[0])
    return out


def red_dtx_stream(frames: list[bytes], *, lose_every: int, t0: float = 1000.0, ts0: int = 123456):
    """(arrival, packet) of what reaches the SFU, and the indexes of the frames sent."""
    sent_frames = [i for i in range(len(frames)) if i not in SILENT or (i - SILENT.start) % 20 == 0]
    out = []
    previous = None
    for n, i in enumerate(sent_frames):
        # RED's 14-bit offset cannot reach back over a silence: then there is no redundancy
        redundant = [((i - previous) * 960, frames[previous])] if previous is not None and i - previous < 17 else []
        previous = i
        packet = rtp(RED_PT, 100 + n, ts0 + i * 960, 2222, red.wrap(OPUS_PT, redundant, frames[i]))
        if n % lose_every == lose_every - 1 and i not in SILENT:
            continue  # lost on the publisher's uplink
        out.append((t0 + i * 0.02, packet))
    return out, sent_frames


def audio_times(path: Path) -> tuple[list[float], float]:
    with av.open(str(path)) as c:
        a = next(s for s in c.streams if s.type == "audio")
        v = next(s for s in c.streams if s.type == "video")
        audio, video = [], []
        for packet in c.demux(a, v):
            if packet.pts is not None:
                (audio if packet.stream is a else video).append(float(packet.pts * packet.time_base))
    return audio, max(video)


def test_red_with_dtx_silences_and_loss_records_plain_opus_in_sync(tmp_path: Path) -> None:
    frames = opus_frames(3.0)
    audio, sent = red_dtx_stream(frames, lose_every=7)
    video = video_packets(3.0)
    write_dump(tmp_path / "001-video.rtpd", "video", [(a, d) for a, d, _ in video])
    # the dump says which payload type is RED, as the capture writes it
    write_dump_with_red(tmp_path / "002-audio.rtpd", audio)
    [entry] = finalize(tmp_path).files
    times, video_end = audio_times(tmp_path / entry.name)
    # every frame the publisher sent is there: the lost ones came out of the next packet's RED
    assert len(times) == len(sent)
    start = times[0]
    expected = [(i - sent[0]) * 0.02 for i in sent]
    assert max(abs((t - start) - e) for t, e in zip(times, expected)) < 0.002  # silences kept as time
    assert abs(times[-1] + 0.02 - video_end - 1 / 30) < 0.1  # audio ends with the video: no drift
    # and it decodes as Opus (not RED bytes handed to the decoder)
    with av.open(str(tmp_path / entry.name)) as c:
        decoded = sum(f.samples for f in c.decode(audio=0))
    assert decoded >= len(sent) * 960 * 0.9


def write_dump_with_red(path: Path, packets: list[tuple[float, bytes]]) -> None:
    from sfu.recording.rtp_dump import DumpWriter

    writer = DumpWriter(
        path,
        {
            "version": 1,
            "producer_id": path.stem,
            "user_key": "7",
            "display_name": "Ann",
            "kind": "audio",
            "source": "mic",
            "clock_rate": 48000,
            "codecs": [
                {"pt": OPUS_PT, "name": "opus", "clock_rate": 48000, "channels": 2, "apt": None},
                {"pt": RED_PT, "name": "red", "clock_rate": 48000, "channels": 2, "apt": None},
            ],
            "opened_at": packets[0][0],
        },
    )
    for arrival, data in packets:
        writer.append_rtp(arrival, data)
    writer.close()
