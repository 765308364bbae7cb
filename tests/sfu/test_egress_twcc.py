"""Transport-wide sequence numbers on what the SFU sends a subscriber (issue 24): every video
packet, retransmission and probe gets the next number of its subscriber's transport, inside a
valid header extension block in the ids negotiated with that subscriber, and the send log knows
each one's size. The C rewriter and send log against their Python twins."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from sfu.rtp import native
from sfu.rtp.forwarding import (
    URI_ABS_SEND_TIME,
    URI_MID,
    URI_TRANSPORT_CC,
    CallSink,
    ExtensionWriter,
    RtpForwarder,
    RtpRewriter,
    parse_extensions,
    vp8_is_keyframe,
)
from sfu.rtp.sendlog import RING, SendLog

VP8_KEY = bytes([0x90, 0x80, 0x05, 0x00])
VP8_DELTA = bytes([0x90, 0x80, 0x06, 0x01])


def rtp(seq: int, payload: bytes, *, ext: bytes = b"", pt: int = 96) -> bytes:
    return struct.pack("!BBHII", 0x90 if ext else 0x80, pt, seq, seq * 3000, 0x1234) + ext + payload


def publisher_ext(twcc_seq: int) -> bytes:
    # the publisher's own numbering under its own id (4): must never reach the subscriber
    body = bytes([0x41]) + struct.pack("!H", twcc_seq) + bytes([0x20]) + b"0"
    return b"\xbe\xde\x00\x02" + body + b"\x00\x00\x00"


@pytest.fixture(params=["python", "native", "native-rewriter-python-log"])
def impl(request: Any) -> tuple[type[RtpForwarder], type[RtpRewriter], type[SendLog]]:
    nat = request.param != "python"
    rewriter = native.rewriter_class(nat)
    log = native.send_log_class(request.param == "native")
    assert (rewriter is not RtpRewriter) == nat, "the native rewriter is not built"
    assert (log is not SendLog) == (request.param == "native"), "the native send log is not built"
    return native.forwarder_class(nat), rewriter, log


def make(impl: Any, ids: dict[str, int], *, log_ext: int = 5) -> tuple[Any, Any, Any, list[bytes]]:
    fwd_cls, rw_cls, log_cls = impl
    fwd = fwd_cls(producer_id="p", kind="video", clock=lambda: 100.0)
    fwd.detectors[96] = vp8_is_keyframe
    out: list[bytes] = []
    rw = rw_cls(
        ssrc=0xAAAA0001,
        rtx_ssrc=0xAAAA0002,
        clock_rate=90000,
        needs_keyframe=True,
        history_size=64,
        request_keyframe=lambda: None,
    )
    rw.configure(pt_map={96: 100}, rtx_pt=101, ext=ExtensionWriter(ids, "3"), sink=CallSink(out.append))
    log = log_cls(log_ext)
    rw.send_log = log
    fwd.rewriters = [rw]
    return fwd, rw, log, out


def extensions(packet: bytes) -> tuple[dict[int, bytes], int]:
    """The one-byte elements and where the payload starts; asserts the block is well formed."""
    assert packet[0] & 0x10
    profile, words = struct.unpack_from("!HH", packet, 12)
    assert profile == 0xBEDE
    end = 16 + 4 * words
    assert end <= len(packet)
    return parse_extensions(packet, 16, end, profile), end


def twcc_of(packet: bytes, ext_id: int = 5) -> int:
    return struct.unpack("!H", extensions(packet)[0][ext_id])[0]


IDS = {URI_MID: 1, URI_ABS_SEND_TIME: 3, URI_TRANSPORT_CC: 5}


def test_every_video_packet_gets_the_next_transport_wide_number(impl: Any) -> None:
    fwd, rw, log, out = make(impl, IDS)
    payloads = [VP8_KEY + b"k" * 50] + [VP8_DELTA + bytes([i]) * (20 + i) for i in range(6)]
    for i, payload in enumerate(payloads):
        fwd.on_rtp(rtp(500 + i, payload, ext=publisher_ext(9000 + i)))
    assert len(out) == len(payloads)
    for i, packet in enumerate(out):
        elements, start = extensions(packet)
        assert set(elements) == {1, 3, 5}  # mid, abs-send-time, ours; the publisher's id 4 gone
        assert elements[1] == b"3" and len(elements[3]) == 3
        assert twcc_of(packet) == i
        assert packet[start:] == payloads[i]
        sent = log.sent(i)
        assert sent is not None and sent[1] == len(packet) and sent[2] == -1
    assert log.sent(len(out)) is None


def test_without_abs_send_time_the_number_is_the_only_timing_element(impl: Any) -> None:
    fwd, rw, log, out = make(impl, {URI_MID: 1, URI_TRANSPORT_CC: 5})
    fwd.on_rtp(rtp(1, VP8_KEY + b"k" * 9))
    fwd.on_rtp(rtp(2, VP8_DELTA + b"d" * 9))
    assert [set(extensions(p)[0]) for p in out] == [{1, 5}, {1, 5}]
    assert [twcc_of(p) for p in out] == [0, 1]
    assert extensions(out[1])[1] == len(out[1]) - 13


def test_a_subscriber_without_transport_cc_gets_no_number(impl: Any) -> None:
    fwd, rw, log, out = make(impl, {URI_MID: 1, URI_ABS_SEND_TIME: 3})
    fwd.on_rtp(rtp(1, VP8_KEY + b"k" * 9))
    assert set(extensions(out[0])[0]) == {1, 3} and log.next == 0


def test_retransmissions_are_new_packets_on_the_transport(impl: Any) -> None:
    fwd, rw, log, out = make(impl, IDS)
    for i in range(3):
        fwd.on_rtp(rtp(10 + i, (VP8_KEY if i == 0 else VP8_DELTA) + b"x" * 30))
    first_seq = struct.unpack_from("!H", out[1], 2)[0]
    assert rw.retransmit([first_seq]) == 1
    resent = out[-1]
    elements, start = extensions(resent)
    assert struct.unpack_from("!H", resent, 2)[0] != first_seq  # RTX: its own numbering
    assert resent[start : start + 2] == struct.pack("!H", first_seq)  # the original sequence number leads
    assert twcc_of(resent) == 3 and log.sent(3)[1] == len(resent)
    assert twcc_of(out[1]) == 1  # the history copy keeps its own number


def test_without_rtx_a_retransmission_is_the_very_bytes_sent_before(impl: Any) -> None:
    """On its own SSRC and sequence number a resent packet gets the same SRTP index, so the same
    AES-GCM nonce: a copy with a new transport-wide number would be a second message under that
    nonce (which gives away GCM's authentication key). It goes again unchanged."""
    fwd, rw, log, out = make(impl, IDS)
    rw.rtx_pt = None
    for i in range(3):
        fwd.on_rtp(rtp(10 + i, (VP8_KEY if i == 0 else VP8_DELTA) + b"x" * 30))
    first_seq = struct.unpack_from("!H", out[1], 2)[0]
    numbered = log.next
    assert rw.retransmit([first_seq]) == 1
    assert out[-1] == out[1]
    assert log.next == numbered  # no new transport-wide number was taken


def test_numbers_wrap_and_unwrap_around_the_ring(impl: Any) -> None:
    log = impl[2](5)
    for i in range(70000):
        assert log.record(100 + i % 7, 1000 * i) == i & 0xFFFF
    assert log.unwrap(69999 & 0xFFFF) == 69999
    assert log.unwrap((69999 - 100) & 0xFFFF) == 69899
    assert log.sent(69999) == (1000 * 69999, 100 + 69999 % 7, -1)
    assert log.sent(69999 - RING) is None  # overwritten
    log.probe_cluster = 4
    seq = log.record(300, 5)
    assert log.sent(log.unwrap(seq)) == (5, 300, 4)


def test_probe_padding_is_numbered_rtx_with_nothing_to_decode(impl: Any) -> None:
    from sfu.rtp.probing import PADDING, send_padding

    fwd, rw, log, out = make(impl, IDS)
    fwd.on_rtp(rtp(1, VP8_KEY + b"k" * 40))
    log.probe_cluster = 7
    assert send_padding(rw, 3) == 3
    log.probe_cluster = -1
    first_rtx = struct.unpack_from("!H", out[1], 2)[0]
    for i, packet in enumerate(out[1:]):
        b0, b1, seq, _ts, ssrc = struct.unpack_from("!BBHII", packet)
        assert b0 & 0x20 and b1 & 0x7F == 101 and ssrc == 0xAAAA0002  # padding, RTX pt and SSRC
        assert seq == (first_rtx + i) & 0xFFFF
        elements, start = extensions(packet)
        assert elements[1] == b"3" and twcc_of(packet) == 1 + i
        assert len(packet) - start == PADDING and packet[-1] == PADDING  # padding only
        assert log.sent(1 + i) == (log.sent(1 + i)[0], len(packet), 7)
    # a receiver's RTX unwrapping finds no payload: nothing is forwarded or decoded
    receiver = impl[0](producer_id="q", kind="video", clock=lambda: 1.0)
    receiver.rtx_apt[101] = 100
    receiver.on_rtp(out[1])
    assert receiver.packets == 0


def test_no_padding_without_rtx_or_transport_cc(impl: Any) -> None:
    from sfu.rtp.probing import send_padding

    _, rw, _, out = make(impl, {URI_MID: 1, URI_ABS_SEND_TIME: 3})
    assert send_padding(rw, 3) == 0
    _, rw, _, out = make(impl, IDS)
    rw.rtx_pt = None
    assert send_padding(rw, 3) == 0 and out == []
