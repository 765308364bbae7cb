"""The replay generator's packets, without I/O: what a publisher puts on the wire."""

from __future__ import annotations

from benchmarks.media import Clip
from benchmarks.rtp_replay import (
    MAX_LAG,
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    OutStream,
    extension_block,
    packetize,
    vp8_descriptor,
    vp8_picture_id,
)
from benchmarks.rtp_wire import find_abs_send_time, rtp_payload_offset, vp8_keyframe_start

IDS = {URI_MID: 1, URI_AUDIO_LEVEL: 2, URI_ABS_SEND_TIME: 3}


def video_clip() -> Clip:
    # 4 frames: a 3000-byte keyframe (3 packets), then small frames; keyframes at 0 and 2
    key = b"\x00" + bytes(2999)  # VP8 keyframe: P bit clear in the first byte
    inter = b"\x01" + bytes(99)
    return Clip(
        "video", [(key, 0, True), (inter, 3000, False), (key, 6000, True), (inter, 9000, False)], 90000, 3000, 4 / 30
    )


def elements(packet: bytes) -> dict[int, bytes]:
    """One-byte header extension elements of an RTP packet."""
    assert packet[0] & 0x10 and packet[12:14] == b"\xbe\xde"
    end = 16 + 4 * int.from_bytes(packet[14:16], "big")
    out, i = {}, 16
    while i < end:
        if packet[i] == 0:
            i += 1
            continue
        eid, n = packet[i] >> 4, (packet[i] & 0x0F) + 1
        out[eid] = packet[i + 1 : i + 1 + n]
        i += 1 + n
    return out


def bound(clip: Clip, *, level: int | None = None) -> OutStream:
    stream = OutStream(packetize(clip), start=0, level=level)
    stream.bind(ssrc=0x1234, pt=97, rtx_ssrc=0x5678, rtx_pt=98, ids=IDS, mid="0")
    stream.start(100.0)
    return stream


def test_packetize_cuts_vp8_like_aiortc_and_keeps_opus_whole() -> None:
    clip = packetize(video_clip())
    assert [len(chunks) for chunks, _ in clip.frames] == [3, 1, 3, 1]
    assert b"".join(clip.frames[0][0]) == b"\x00" + bytes(2999)
    assert max(len(c) for chunks, _ in clip.frames for c in chunks) == 1296  # + 4-byte descriptor = 1300
    assert clip.keyframes == [0, 2]
    audio = packetize(Clip("audio", [(b"opus" * 20, 0, True)] * 3, 48000, 960, 0.06))
    assert [chunks for chunks, _ in audio.frames] == [(b"opus" * 20,)] * 3


def test_descriptor_carries_the_picture_id() -> None:
    for pid in (0, 1, 127, 128, 0x7FFF):
        assert vp8_picture_id(vp8_descriptor(pid, True) + b"\x00") == pid
    assert vp8_keyframe_start(vp8_descriptor(5, True) + b"\x00")
    assert not vp8_keyframe_start(vp8_descriptor(5, False) + b"\x00")


def test_extension_block_has_the_negotiated_ids() -> None:
    prefix, suffix = extension_block(IDS, "0", abs_send_time=True, level=None)
    packet = bytes(12) + prefix + b"\x0a\x0b\x0c" + suffix
    packet = bytes([0x90]) + packet[1:]
    assert (len(packet) - 12) % 4 == 0
    assert elements(packet) == {1: b"0", 3: b"\x0a\x0b\x0c"}
    assert find_abs_send_time(packet, 3) == 0x0A0B0C
    prefix, suffix = extension_block(IDS, "1", abs_send_time=False, level=0x99)
    assert suffix == b"" and elements(bytes([0x90]) + bytes(11) + prefix) == {1: b"1", 2: b"\x99"}


def test_video_replay_is_continuous_and_marks_frames() -> None:
    stream = bound(video_clip())
    sent: list[bytes] = []
    # 10 frame periods, 2 frames per call: the clip (4 frames) looped twice and a half
    n = sum(stream.emit(100.0 + (k + 0.5) / 30, b"\x01\x02\x03", sent.append) for k in range(1, 10, 2))
    assert n == len(sent) == 3 + 1 + 3 + 1 + 3 + 1 + 3 + 1 + 3 + 1
    seqs = [int.from_bytes(p[2:4], "big") for p in sent]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(sent))]
    assert {p[1] & 0x7F for p in sent} == {97} and {p[8:12] for p in sent} == {b"\x00\x00\x12\x34"}
    frames = [p for p in sent if p[1] & 0x80]  # the marker closes each frame
    assert len(frames) == 10
    ts = [int.from_bytes(p[4:8], "big") for p in frames]
    assert all((b - a) & 0xFFFFFFFF == 3000 for a, b in zip(ts, ts[1:]))
    pids = [vp8_picture_id(p[rtp_payload_offset(p) :]) for p in frames]
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pids, pids[1:]))  # type: ignore[operator]
    assert all(find_abs_send_time(p, 3) == 0x010203 for p in sent)
    assert stream.frames == 10 and stream.packets == len(sent)


def test_keyframe_request_jumps_to_the_next_keyframe() -> None:
    stream = bound(video_clip())
    sent: list[bytes] = []
    stream.emit(100.0, b"\x00\x00\x00", sent.append)  # frame 0 (key)
    stream.emit(100.0 + 1 / 30, b"\x00\x00\x00", sent.append)  # frame 1
    stream.request_keyframe()
    sent.clear()
    stream.emit(100.0 + 2 / 30, b"\x00\x00\x00", sent.append)
    assert vp8_keyframe_start(sent[0][rtp_payload_offset(sent[0]) :]) and len(sent) == 3
    assert stream.keyframes_requested == 1


def test_a_late_stream_skips_frames_instead_of_bursting() -> None:
    stream = bound(video_clip())
    sent: list[bytes] = []
    late = MAX_LAG + 1.0
    n = stream.emit(100.0 + late, b"\x00\x00\x00", sent.append)
    assert stream.skipped > 0 and stream.frames < late * 30 / 2
    assert n == len(sent)


def test_nack_is_answered_with_rtx() -> None:
    stream = bound(Clip("audio", [(b"opus-frame", 0, True)] * 5, 48000, 960, 0.1), level=0x80 | 30)
    sent: list[bytes] = []
    stream.emit(100.0 + 0.07, b"", sent.append)
    original = sent[1]
    seq = int.from_bytes(original[2:4], "big")
    out: list[bytes] = []
    assert stream.retransmit([seq, (seq + 1000) & 0xFFFF], out.append) == 1  # the unknown one is skipped
    (rtx,) = out
    assert rtx[1] & 0x7F == 98 and rtx[8:12] == (0x5678).to_bytes(4, "big")
    off = rtp_payload_offset(rtx)
    assert rtx[off : off + 2] == original[2:4] and rtx[off + 2 :] == original[rtp_payload_offset(original) :]
    assert elements(original)[2] == bytes([0x80 | 30])  # audio level, as browsers send it
