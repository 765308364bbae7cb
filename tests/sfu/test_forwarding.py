"""The hot path on crafted RTP bytes: rewrite, extensions, MID, NACK, keyframes."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from sfu.rtp import native
from sfu.rtp.forwarding import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    CallSink,
    ExtensionWriter,
    RtpForwarder,
    RtpRewriter,
    h264_is_keyframe,
    parse_extensions,
    vp8_is_keyframe,
)
from sfu_fakes import ManualClock

VP8_KEY = bytes([0x90, 0x80, 0x05, 0x00])  # X, S, PID 0; I: picture id 5; P bit 0 -> key
VP8_DELTA = bytes([0x90, 0x80, 0x06, 0x01])
VP8_CONT = bytes([0x80, 0x80, 0x06, 0x01])  # no S bit: continuation


def rtp(
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    *,
    pt: int = 96,
    marker: bool = False,
    ext: bytes = b"",
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | (0x10 if ext else 0) | (0x20 if padding else 0)
    pad = (b"\x00" * (padding - 1) + bytes([padding])) if padding else b""
    return struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc) + ext + payload + pad


def one_byte_ext(elements: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
    body += b"\x00" * (-len(body) & 3)
    return b"\xbe\xde" + struct.pack("!H", len(body) // 4) + body


@pytest.fixture(autouse=True, params=["python", "native", "mixed"])
def rewriter_impl(request: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case against the Python forwarder and rewriter, the C ones (sfu/rtp/_forwarder.pyx,
    sfu/rtp/_rewriter.pyx), and the C forwarder feeding a Python sink (as it feeds simulcast layer
    switches)."""
    native_rewriter = request.param == "native"
    native_forwarder = request.param in ("native", "mixed")
    rewriter = native.rewriter_class(native_rewriter)
    forwarder = native.forwarder_class(native_forwarder)
    assert (rewriter is not RtpRewriter) == native_rewriter, "the native rewriter is not built"
    assert (forwarder is not RtpForwarder) == native_forwarder, "the native forwarder is not built"
    monkeypatch.setitem(globals(), "RtpRewriter", rewriter)
    monkeypatch.setitem(globals(), "RtpForwarder", forwarder)


def make(kind: str = "video", history: int = 64) -> tuple[RtpForwarder, RtpRewriter, list[bytes], list[int]]:
    clock = ManualClock()
    fwd = RtpForwarder(producer_id="p", kind=kind, clock=clock)
    fwd.detectors[96] = vp8_is_keyframe if kind == "video" else None
    fwd.rtx_apt[97] = 96
    requests: list[int] = []
    out: list[bytes] = []
    rw = RtpRewriter(
        ssrc=0xAAAA0001,
        rtx_ssrc=0xAAAA0002,
        clock_rate=90000,
        needs_keyframe=kind == "video",
        history_size=history,
        request_keyframe=lambda: requests.append(1),
    )
    ids = {URI_MID: 1, URI_ABS_SEND_TIME: 3} if kind == "video" else {URI_MID: 1, URI_AUDIO_LEVEL: 2}
    rw.configure(pt_map={96: 100}, rtx_pt=101, ext=ExtensionWriter(ids, "7"), sink=CallSink(out.append))
    fwd.rewriters = [rw]
    return fwd, rw, out, requests


def parse(packet: bytes) -> dict:
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    off = 12
    exts = {}
    if b0 & 0x10:
        profile, words = struct.unpack_from("!HH", packet, 12)
        exts = parse_extensions(packet, 16, 16 + 4 * words, profile)
        off = 16 + 4 * words
    return {
        "pt": b1 & 0x7F,
        "marker": bool(b1 & 0x80),
        "seq": seq,
        "ts": ts,
        "ssrc": ssrc,
        "ext": exts,
        "payload": packet[off:],
    }


def test_video_waits_for_keyframe_then_rewrites_header() -> None:
    fwd, rw, out, requests = make()
    publisher_ext = one_byte_ext([(4, b"0"), (9, b"\x01\x02\x03"), (5, b"zz")])  # foreign ids
    fwd.on_rtp(rtp(1000, 5000, 0x1234, VP8_DELTA + b"x" * 10, ext=publisher_ext))
    assert out == [] and requests  # dropped, keyframe asked for
    fwd.on_rtp(rtp(1001, 8000, 0x1234, VP8_KEY + b"k" * 10, ext=publisher_ext, marker=True))
    fwd.on_rtp(rtp(1002, 11000, 0x1234, VP8_DELTA + b"d" * 10, ext=publisher_ext))
    assert len(out) == 2
    first, second = parse(out[0]), parse(out[1])
    assert first["ssrc"] == second["ssrc"] == 0xAAAA0001
    assert first["pt"] == 100 and first["marker"] and not second["marker"]
    assert (second["seq"] - first["seq"]) & 0xFFFF == 1
    assert (second["ts"] - first["ts"]) & 0xFFFFFFFF == 3000
    # the subscriber's own MID, its abs-send-time id, nothing unnegotiated
    assert first["ext"][1] == b"7"
    assert set(first["ext"]) == {1, 3} and len(first["ext"][3]) == 3
    assert first["payload"] == VP8_KEY + b"k" * 10


def test_audio_level_is_mapped_and_padding_stripped() -> None:
    fwd, rw, out, _ = make("audio")
    fwd.level_id = 6
    levels: list[int] = []
    fwd.on_level = lambda level, ts: levels.append(level)
    fwd.detectors[96] = None
    fwd.on_rtp(rtp(5, 960, 0x99, b"opus", ext=one_byte_ext([(6, b"\x9e"), (4, b"0")]), padding=3))
    packet = parse(out[0])
    assert packet["ext"] == {1: b"7", 2: b"\x9e"}
    assert packet["payload"] == b"opus"
    assert levels == [0x9E]


def test_voice_activity_is_summed_by_rtp_time_without_a_call_per_packet() -> None:
    fwd, rw, out, _ = make("audio")
    fwd.level_id = 6
    fwd.detectors[96] = None
    voiced, silent = b"\x9e", b"\xff"  # V bit + 30 dBov (speech), 127 (silence)
    ts = 0xFFFFF000  # across the 32-bit wrap
    for i in range(50):  # one second of 20 ms packets: 30 voiced, then 20 silent
        fwd.on_rtp(rtp(i, ts, 0x99, b"opus", ext=one_byte_ext([(6, voiced if i < 30 else silent)])))
        ts = (ts + 960) & 0xFFFFFFFF
    voiced_s, total_s = fwd.take_levels()
    assert total_s == pytest.approx(49 * 0.02) and voiced_s == pytest.approx(29 * 0.02)
    assert fwd.take_levels() == (0.0, 0.0)  # a new window
    # a DTX gap (20 ms + 400 ms) counts as that much, a 1.5 s mute as 0.5 s, a 3 s jump as nothing
    for seq, step in ((50, 19200), (51, 72000), (52, 144000)):
        ts = (ts + step) & 0xFFFFFFFF
        fwd.on_rtp(rtp(seq, ts, 0x99, b"opus", ext=one_byte_ext([(6, silent)])))
    assert fwd.take_levels()[1] == pytest.approx(0.42 + 0.5)
    assert len(out) == 53  # and every packet was forwarded


def test_no_extension_block_when_nothing_negotiated() -> None:
    fwd, rw, out, _ = make("audio")
    rw.ext = ExtensionWriter({}, "7")
    fwd.detectors[96] = None
    fwd.on_rtp(rtp(5, 960, 0x99, b"opus"))
    assert out[0][0] == 0x80 and parse(out[0])["payload"] == b"opus"


def test_two_byte_extensions_are_read() -> None:
    body = bytes([6, 1, 0x85, 0, 4, 1]) + b"0"
    body += b"\x00" * (-len(body) & 3)
    block = b"\x10\x00" + struct.pack("!H", len(body) // 4) + body
    assert parse_extensions(block, 4, len(block), 0x1000) == {6: b"\x85", 4: b"0"}


def test_padding_only_and_garbage_are_discarded() -> None:
    fwd, rw, out, _ = make()
    fwd.on_rtp(b"\x80\x60")  # too short
    fwd.on_rtp(rtp(1, 1, 1, b"", padding=4))
    fwd.on_rtp(struct.pack("!BBHII", 0x90, 96, 1, 1, 1) + b"\xbe\xde")  # truncated extension
    assert out == [] and fwd.discarded == 3


def test_nack_answered_from_history_as_rtx() -> None:
    fwd, rw, out, _ = make()
    for i in range(5):
        fwd.on_rtp(rtp(200 + i, 9000 * i, 0x1, (VP8_KEY if i == 0 else VP8_CONT) + bytes([i]) * 20))
    sent = [parse(p) for p in out]
    lost = [sent[1]["seq"], sent[3]["seq"], (sent[4]["seq"] + 40) & 0xFFFF]  # the last one was never sent
    out.clear()
    assert rw.retransmit(lost) == 2
    rtx = [parse(p) for p in out]
    assert all(p["ssrc"] == 0xAAAA0002 and p["pt"] == 101 for p in rtx)
    assert (rtx[1]["seq"] - rtx[0]["seq"]) & 0xFFFF == 1
    # RTX payload: original sequence number, then the original payload
    assert struct.unpack("!H", rtx[0]["payload"][:2])[0] == sent[1]["seq"]
    assert rtx[0]["payload"][2:] == sent[1]["payload"]
    assert rtx[0]["ext"][1] == b"7"


def test_nack_without_rtx_resends_the_same_packet() -> None:
    fwd, rw, out, _ = make()
    rw.rtx_pt = None
    fwd.on_rtp(rtp(1, 0, 0x1, VP8_KEY + b"a"))
    original = out[0]
    assert rw.retransmit([parse(original)["seq"]]) == 1
    assert out[-1] == original


def test_history_slot_reuse_is_detected() -> None:
    fwd, rw, out, _ = make(history=4)
    for i in range(6):
        fwd.on_rtp(rtp(10 + i, 0, 0x1, (VP8_KEY if i == 0 else VP8_CONT) + b"p"))
    first = parse(out[0])["seq"]
    assert rw.retransmit([first]) == 0  # overwritten by a newer packet


def test_rtx_from_publisher_is_unwrapped() -> None:
    fwd, rw, out, _ = make()
    fwd.on_rtp(rtp(50, 0, 0x1, VP8_KEY + b"a"))
    fwd.on_rtp(rtp(7, 0, 0x2, struct.pack("!H", 51) + VP8_CONT + b"b", pt=97))
    a, b = parse(out[0]), parse(out[1])
    assert (b["seq"] - a["seq"]) & 0xFFFF == 1 and b["pt"] == 100
    assert b["payload"] == VP8_CONT + b"b"


def test_a_packet_far_ahead_is_dropped_and_the_stream_goes_on() -> None:
    """One packet 20,000 ahead of the stream (an RTX packet taken for media, session 10) sent
    on would move the subscriber's SRTP window past the stream: every later packet refused,
    one frame then a frozen tile. It is dropped and counted; the stream continues."""
    fwd, rw, out, _ = make()
    fwd.on_rtp(rtp(500, 0, 0x1, VP8_KEY + b"a"))
    fwd.on_rtp(rtp(501, 0, 0x1, VP8_CONT + b"b"))
    assert rw.jumps == 0 and rw.first_jump is None
    fwd.on_rtp(rtp(20500, 0, 0x1, VP8_CONT + b"stray"))
    fwd.on_rtp(rtp(502, 0, 0x1, VP8_CONT + b"c"))
    base = parse(out[0])["seq"]
    assert [parse(p)["payload"][-1:] for p in out] == [b"a", b"b", b"c"]
    assert [parse(p)["seq"] for p in out] == [base, (base + 1) & 0xFFFF, (base + 2) & 0xFFFF]
    assert rw.jumps == 1 and rw.first_jump == ((base + 1) & 0xFFFF, (base + 20000) & 0xFFFF, 20500, 100)


def test_a_stream_that_really_moved_ahead_restarts_on_a_keyframe() -> None:
    """Several packets in a row far ahead: the publisher's numbers did move on without the
    gap being seen (no such path is known; this keeps one from freezing the tile): the
    subscriber asks for a keyframe and continues its own numbering from it."""
    fwd, rw, out, requests = make()
    fwd.on_rtp(rtp(500, 0, 0x1, VP8_KEY + b"a"))
    asked = len(requests)
    for seq in (20500, 20501, 20502):
        fwd.on_rtp(rtp(seq, 0, 0x1, VP8_CONT + b"x"))
    assert len(out) == 1 and len(requests) > asked
    fwd.on_rtp(rtp(20503, 0, 0x1, VP8_KEY + b"k"))
    assert len(out) == 2
    assert (parse(out[1])["seq"] - parse(out[0])["seq"]) & 0xFFFF == 1


def test_continuity_across_publisher_switch() -> None:
    fwd, rw, out, requests = make()
    fwd.on_rtp(rtp(60000, 1_000_000, 0x1, VP8_KEY + b"a"))
    fwd.on_rtp(rtp(60001, 1_003_000, 0x1, VP8_CONT + b"b"))
    last = parse(out[-1])
    # the publisher reconnects: new SSRC, new random sequence and timestamp
    rw.resync()
    fwd.clock.now += 0.5  # type: ignore[attr-defined]
    fwd.on_rtp(rtp(17, 42, 0x77, VP8_DELTA + b"x"))  # not a keyframe: dropped
    fwd.on_rtp(rtp(18, 3042, 0x77, VP8_KEY + b"y"))
    fwd.on_rtp(rtp(17, 42, 0x77, VP8_CONT + b"late"))  # older than the sync point
    first_new = parse(out[-1])
    assert len(out) == 3
    assert first_new["seq"] == (last["seq"] + 1) & 0xFFFF
    assert (first_new["ts"] - last["ts"]) & 0xFFFFFFFF == 45000  # 0.5 s at 90 kHz
    assert first_new["ssrc"] == last["ssrc"]


def test_a_blackout_restarts_the_subscriber_on_a_keyframe_without_a_hole() -> None:
    """3 s without packets, then the stream goes on 90 sequence numbers later: the hole is
    reported (the producer resyncs its consumers) before the packet after it is forwarded,
    so the subscriber gets no hole to NACK, only the next keyframe, asked for at once."""
    fwd, rw, out, requests = make()
    gaps: list[int] = []

    def gap() -> None:
        gaps.append(1)
        rw.resync()

    fwd.on_gap = gap
    fwd.on_rtp(rtp(1000, 0, 0x1, VP8_KEY + b"a"))
    fwd.on_rtp(rtp(1001, 3000, 0x1, VP8_DELTA + b"b"))
    fwd.clock.now += 0.03  # type: ignore[attr-defined]
    fwd.on_rtp(rtp(1004, 9000, 0x1, VP8_DELTA + b"c"))  # two lost on a working link: NACK's job
    assert gaps == [] and len(out) == 3
    before = parse(out[-1])
    asked = len(requests)
    fwd.clock.now += 3.0  # type: ignore[attr-defined]
    fwd.on_rtp(rtp(1094, 279_000, 0x1, VP8_DELTA + b"d"))  # after the blackout: not decodable
    assert gaps == [1] and len(out) == 3 and len(requests) == asked + 1
    fwd.on_rtp(rtp(1095, 282_000, 0x1, VP8_KEY + b"e"))
    after = parse(out[-1])
    assert len(out) == 4 and after["payload"] == VP8_KEY + b"e"
    assert after["seq"] == (before["seq"] + 1) & 0xFFFF  # no hole for the subscriber
    # a jump too large to NACK is a hole as well, however quickly it came
    fwd.on_rtp(rtp(1095 + 500, 300_000, 0x1, VP8_DELTA + b"f"))
    assert gaps == [1, 1] and len(out) == 4


def vp8(pid: int, tl0: int, *, key: bool, tid: int = 0) -> bytes:
    """A VP8 payload with a 15-bit picture id, TL0PICIDX and temporal layer (RFC 7741)."""
    return bytes([0x90, 0xE0, 0x80 | (pid >> 8), pid & 0xFF, tl0, tid << 6, 0x00 if key else 0x01]) + b"x"


def numbering(packet: bytes) -> tuple[int, int]:
    p = parse(packet)["payload"]
    return ((p[2] & 0x7F) << 8) | p[3], p[4]


def test_vp8_picture_ids_continue_across_a_layer_switch() -> None:
    """Each simulcast layer numbers its pictures on its own (Chromium starts each at random):
    when a subscriber moves to another layer at its keyframe, the picture ids and TL0PICIDX it
    sees go on from the last ones it got, so its decoder does not drop what follows as old."""
    fwd, rw, out, _ = make()
    ids = {URI_MID: 1, URI_ABS_SEND_TIME: 3}
    rw.configure(
        pt_map={96: 100}, rtx_pt=101, ext=ExtensionWriter(ids, "7"), sink=CallSink(out.append), vp8_pts=frozenset({96})
    )
    fwd.on_rtp(rtp(1, 0, 0x1, vp8(1000, 10, key=True)))
    fwd.on_rtp(rtp(2, 3000, 0x1, vp8(1001, 11, key=False)))
    fwd.on_rtp(rtp(3, 6000, 0x1, vp8(1002, 11, key=False, tid=1)))
    assert [numbering(p) for p in out] == [(1000, 10), (1001, 11), (1002, 11)]  # the first stream as it came
    rw.resync()  # a layer switch: the other layer's keyframe, far behind in its own numbering
    fwd.on_rtp(rtp(500, 90_000, 0x1, vp8(200, 3, key=True)))
    fwd.on_rtp(rtp(501, 90_000, 0x1, bytes([0x80]) + vp8(200, 3, key=True)[1:]))  # the rest of that frame
    fwd.on_rtp(rtp(502, 93_000, 0x1, vp8(201, 4, key=False)))
    fwd.on_rtp(rtp(503, 96_000, 0x1, vp8(202, 4, key=False, tid=1)))
    assert [numbering(p) for p in out[3:]] == [(1003, 12), (1003, 12), (1004, 13), (1005, 13)]
    # across the 15-bit wrap
    rw.resync()
    fwd.on_rtp(rtp(900, 200_000, 0x1, vp8(0x7FFF, 255, key=True)))
    fwd.on_rtp(rtp(901, 203_000, 0x1, vp8(0, 0, key=False)))
    assert [numbering(p) for p in out[-2:]] == [(1006, 14), (1007, 15)]
    # H.264 or any payload type not declared VP8 is left alone
    rw.configure(pt_map={96: 100}, rtx_pt=101, ext=ExtensionWriter(ids, "7"), sink=CallSink(out.append))
    fwd.on_rtp(rtp(902, 206_000, 0x1, vp8(1, 1, key=False)))
    assert numbering(out[-1]) == (1, 1)


def test_paused_producer_forwards_nothing() -> None:
    fwd, rw, out, _ = make()
    fwd.paused = True
    fwd.on_rtp(rtp(1, 0, 0x1, VP8_KEY + b"a"))
    assert out == [] and fwd.packets == 1


def test_rtp_taps_see_every_forwarded_packet() -> None:
    fwd, rw, out, _ = make()
    seen: list[tuple[str, str, bytes]] = []
    fwd.taps = [lambda pid, kind, data: seen.append((pid, kind, data))]
    packet = rtp(1, 0, 0x1, VP8_KEY + b"a")
    fwd.on_rtp(packet)
    assert seen == [("p", "video", packet)]


def test_keyframe_detectors() -> None:
    assert vp8_is_keyframe(VP8_KEY) and not vp8_is_keyframe(VP8_DELTA) and not vp8_is_keyframe(VP8_CONT)
    assert vp8_is_keyframe(bytes([0x10, 0x00]))  # no extension byte
    assert not vp8_is_keyframe(b"") and not vp8_is_keyframe(bytes([0x90]))
    assert h264_is_keyframe(bytes([0x65, 0x88]))  # IDR
    assert h264_is_keyframe(bytes([0x67, 0x42]))  # SPS
    assert not h264_is_keyframe(bytes([0x41, 0x9A]))  # non-IDR slice
    stap = bytes([0x78]) + struct.pack("!H", 2) + bytes([0x67, 0x42]) + struct.pack("!H", 2) + bytes([0x68, 0xCE])
    assert h264_is_keyframe(stap)
    assert h264_is_keyframe(bytes([0x7C, 0x85, 0x00]))  # FU-A start of IDR
    assert not h264_is_keyframe(bytes([0x7C, 0x05, 0x00]))  # FU-A continuation
