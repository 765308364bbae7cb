"""Opus RED (RFC 2198) through the SFU: what a subscriber's decoder gets from a RED publisher,
with RED negotiated and without (Firefox ESR 153 offers none), on the C and the Python path;
and the SDP that makes a browser send it."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from sfu.rtp import native, red, red_sdp
from sfu.rtp.forwarding import URI_AUDIO_LEVEL, URI_MID, CallSink, ExtensionWriter, RtpForwarder, RtpRewriter
from sfu.room.red_negotiation import RedNegotiation

OPUS_PUB, RED_PUB = 111, 63  # Chromium's numbers
OPUS_SUB, RED_SUB = 96, 63  # the subscriber's (aiortc's Opus number in our offers)


def rtp(seq: int, ts: int, pt: int, payload: bytes, level: int | None = None) -> bytes:
    ext = b""
    if level is not None:
        ext = b"\xbe\xde\x00\x01" + bytes([(1 << 4), level, 0, 0])
    b0 = 0x90 if ext else 0x80
    return struct.pack("!BBHII", b0, pt, seq, ts, 0x1234) + ext + payload


def body(packet: bytes) -> tuple[int, int, int, bytes, dict[int, bytes]]:
    b0, b1, seq, ts, _ = struct.unpack_from("!BBHII", packet)
    off = 12
    exts: dict[int, bytes] = {}
    if b0 & 0x10:
        words = struct.unpack_from("!H", packet, 14)[0]
        i, end = 16, 16 + 4 * words
        while i < end:
            if packet[i] == 0:
                i += 1
                continue
            eid, length = packet[i] >> 4, (packet[i] & 0x0F) + 1
            exts[eid] = packet[i + 1 : i + 1 + length]
            i += 1 + length
        off = end
    return b1 & 0x7F, seq, ts, packet[off:], exts


@pytest.fixture(params=["python", "native"])
def impl(request: Any) -> tuple[type[RtpForwarder], type[RtpRewriter]]:
    fwd = native.forwarder_class(request.param == "native")
    rw = native.rewriter_class(request.param == "native")
    assert (rw is not RtpRewriter) == (request.param == "native"), "the native rewriter is not built"
    return fwd, rw


def room(impl: tuple[type[RtpForwarder], type[RtpRewriter]], *, keep: bool) -> tuple[RtpForwarder, list[bytes], Any]:
    forwarder_cls, rewriter_cls = impl
    fwd = forwarder_cls(producer_id="p", kind="audio", clock=lambda: 10.0)
    fwd.level_id = 1
    levels: list[int] = []
    fwd.on_level = lambda level, ts: levels.append(level)
    out: list[bytes] = []
    rw = rewriter_cls(
        ssrc=0xBEEF, rtx_ssrc=0, clock_rate=48000, needs_keyframe=False, history_size=0, request_keyframe=lambda: None
    )
    pt_map = {OPUS_PUB: OPUS_SUB}
    if keep:
        pt_map[RED_PUB] = RED_SUB
    rw.configure(
        pt_map=pt_map,
        rtx_pt=None,
        ext=ExtensionWriter({URI_MID: 3, URI_AUDIO_LEVEL: 1}, "0"),
        sink=CallSink(out.append),
        red_pt=RED_PUB,
        red_keep=keep,
    )
    fwd.rewriters = [rw]
    return fwd, out, (rw, levels)


FRAMES = [bytes([0x78, i]) + bytes(range(i, i + 40)) for i in range(6)]  # Opus-looking frames


def red_stream() -> list[bytes]:
    """What Chromium sends: each packet's primary frame after the previous frame (ts 960 earlier)."""
    packets = []
    for i, frame in enumerate(FRAMES):
        redundant = [(960, FRAMES[i - 1])] if i else []
        packets.append(rtp(100 + i, 5000 + 960 * i, RED_PUB, red.wrap(OPUS_PUB, redundant, frame), level=0x80 | 30))
    return packets


def test_a_subscriber_without_red_gets_each_opus_frame_as_if_no_red_was_sent(impl: Any) -> None:
    fwd, out, (rw, levels) = room(impl, keep=False)
    for packet in red_stream():
        fwd.on_rtp(packet)
    got = [body(p) for p in out]
    assert [g[3] for g in got] == FRAMES  # the primary frames, nothing of the redundancy
    assert {g[0] for g in got} == {OPUS_SUB}
    assert [(g[1] - got[0][1]) & 0xFFFF for g in got] == list(range(6))  # no hole in the sequence
    assert [(g[2] - got[0][2]) & 0xFFFFFFFF for g in got] == [960 * i for i in range(6)]
    assert all(g[4][1] == bytes([0x80 | 30]) for g in got)  # the audio level still reaches the subscriber
    assert levels == [0x80 | 30] * 6  # and the speaker detection
    assert rw.octets == sum(len(f) for f in FRAMES)


def test_a_subscriber_with_red_gets_red_in_its_own_payload_types(impl: Any) -> None:
    fwd, out, _ = room(impl, keep=True)
    sent = red_stream()
    for packet in sent:
        fwd.on_rtp(packet)
    got = [body(p) for p in out]
    assert {g[0] for g in got} == {RED_SUB}
    for i, g in enumerate(got):
        blocks = red.blocks(g[3])
        assert blocks is not None
        assert blocks[-1] == (OPUS_SUB, 0, FRAMES[i])  # block types renumbered, data untouched
        if i:
            assert blocks[0] == (OPUS_SUB, 960, FRAMES[i - 1])
    # the same bytes as sent, but the block headers' types
    assert all(len(g[3]) == len(body(s)[3]) for g, s in zip(got, sent))


def test_malformed_red_is_dropped_not_forwarded(impl: Any) -> None:
    fwd, out, (rw, _) = room(impl, keep=False)
    fwd.on_rtp(rtp(1, 960, RED_PUB, bytes([0x80 | OPUS_PUB, 0, 0])))  # header cut short
    fwd.on_rtp(rtp(2, 1920, RED_PUB, bytes([0x80 | OPUS_PUB, 0x0F, 0x00, 0x50, OPUS_PUB]) + b"x" * 10))  # length > data
    fwd.on_rtp(rtp(3, 2880, RED_PUB, bytes([OPUS_PUB])))  # empty primary
    assert out == [] and rw.dropped == 3
    fwd.on_rtp(rtp(4, 3840, OPUS_PUB, b"\x78plain"))  # plain Opus from the same publisher still flows
    assert body(out[0])[3] == b"\x78plain"


def test_red_payload_helpers_agree() -> None:
    payload = red.wrap(111, [(1920, b"a" * 300), (960, b"bb")], b"primary")
    assert red.blocks(payload) == [(111, 1920, b"a" * 300), (111, 960, b"bb"), (111, 0, b"primary")]
    pt, off = red.primary(payload) or (0, 0)
    assert (pt, payload[off:]) == (111, b"primary")
    assert red.retag(payload, {}) is payload
    assert red.blocks(red.retag(payload, {111: 96})) == [(96, 1920, b"a" * 300), (96, 960, b"bb"), (96, 0, b"primary")]
    assert red.blocks(b"\x80\x00") is None and red.primary(b"") is None


# ---------------------------------------------------------------- SDP

CHROMIUM_OFFER = "\r\n".join(
    [
        "v=0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=rtpmap:96 VP8/90000",
        "",
    ]
)

AIORTC_REOFFER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8",
        "a=mid:2",
        "a=sendonly",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "",
    ]
)


def test_red_goes_before_opus_where_the_client_sends_and_after_it_where_it_receives() -> None:
    offered = red_sdp.parse(CHROMIUM_OFFER)
    assert offered == {"0": red_sdp.RedCodec(63, 111)}
    out = red_sdp.accept(AIORTC_REOFFER, offered, answer=False, preferred_pt=63)
    lines = out.split("\r\n")
    # libwebrtc sends RED only when it precedes Opus in what it was answered
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 63 111" in lines
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 96 63 0 8" in lines
    assert lines.count("a=rtpmap:63 red/48000/2") == 2
    assert "a=fmtp:63 111/111" in lines and "a=fmtp:63 96/96" in lines
    assert red_sdp.parse(out) == {"0": red_sdp.RedCodec(63, 111), "2": red_sdp.RedCodec(63, 96)}
    # an answer names only what the client offered
    answer = red_sdp.accept(AIORTC_REOFFER, offered, answer=True, preferred_pt=63)
    assert red_sdp.parse(answer) == {"0": red_sdp.RedCodec(63, 111)}
    assert red_sdp.accept(out, offered, answer=False, preferred_pt=63) == out  # idempotent
    # aiortc's re-offers number the publisher's Opus its own way (96): RED follows it there,
    # or the browser stops sending RED at the first re-offer
    renumbered = AIORTC_REOFFER.replace("SAVPF 111", "SAVPF 97").replace("a=rtpmap:111", "a=rtpmap:97")
    assert red_sdp.parse(red_sdp.accept(renumbered, offered, answer=False, preferred_pt=63))["0"] == red_sdp.RedCodec(
        63, 97
    )


def test_red_takes_a_free_payload_type_when_the_client_named_none() -> None:
    sdp = AIORTC_REOFFER.replace("96 0 8", "96 63 0 8").replace(
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:63 CN/8000\r\na=rtpmap:0 PCMU/8000"
    )
    out = red_sdp.accept(sdp, {}, answer=False)
    found = red_sdp.parse(out)
    assert set(found) == {"2"} and found["2"].pt not in (63, 96, 0, 8, 111)


class FakeConsumer:
    def __init__(self, mid: str, kind: str = "audio") -> None:
        self.mid = mid
        self.kind = kind
        self.red_pt: int | None = None
        self.refreshed = 0

    def refresh(self) -> None:
        self.refreshed += 1


def test_negotiation_follows_what_each_side_took_and_can_be_switched_off() -> None:
    neg = RedNegotiation(True)
    consumer = FakeConsumer("2")
    neg.on_offer(CHROMIUM_OFFER, [consumer])
    assert neg.producer_pt("0") == 63 and neg.producer_pt("1") is None
    offer = neg.describe(AIORTC_REOFFER, answer=False)
    # Chromium's answer takes RED on our m-section; Firefox's would not list it
    neg.on_answer(offer, [consumer])
    assert consumer.red_pt == 63 and consumer.refreshed == 1
    neg.on_answer(AIORTC_REOFFER, [consumer])
    assert consumer.red_pt is None and consumer.refreshed == 2
    off = RedNegotiation(False)
    off.on_offer(CHROMIUM_OFFER, [consumer])
    assert off.producer_pt("0") is None and off.describe(AIORTC_REOFFER, answer=False) == AIORTC_REOFFER


def test_the_server_asks_publishers_for_dtx_unless_told_not_to() -> None:
    from sfu.rtp.opus_fec import request_fec

    sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n"
    assert "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1" in request_fec(sdp, dtx=True)
    assert "usedtx" not in request_fec(sdp)
    bare = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    assert "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1" in request_fec(bare, dtx=True)


def test_a_clients_nonsense_red_lines_are_no_red_and_no_error() -> None:
    for fmtp in ("a=fmtp:63 abc", "a=fmtp:63 111/0", "a=fmtp:63 ", "a=fmtp:63 9/9"):
        sdp = CHROMIUM_OFFER.replace("a=fmtp:63 111/111", fmtp)
        assert red_sdp.parse(sdp) == {}
    broken = AIORTC_REOFFER.replace("SAVPF 96 0 8", "SAVPF 0 8")  # Opus named but not listed
    assert "red" not in red_sdp.accept(broken, {}, answer=False).split("a=mid:2")[1]
