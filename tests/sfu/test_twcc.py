"""Transport-wide congestion control feedback: the RTCP encoding against a packet decoded
by hand, arrivals recorded from real RTP headers, and the SDP that negotiates it."""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

from sfu.rtp import native, twcc
from sfu.rtp.arrivals import ArrivalLog
from sfu.rtp.twcc import URI_TRANSPORT_CC, TwccResponder, build_feedback, parse_feedback

# Four packets from sequence number 100, the feedback's reference time 15 x 64 ms:
#   100 arrived at 1.000000 s  -> 40 ms after the reference time = 160 ticks of 250 us
#   101 lost
#   102 arrived at 1.000500 s  -> +0.5 ms after 100 = 2 ticks
#   103 arrived at 0.999000 s  -> -1.5 ms after 102 (reordered) = -6 ticks, a 2-byte delta
HAND_DECODED = bytes.fromhex(
    "af"  # V=2, P=1 (padded), FMT=15
    "cd"  # PT=205 RTPFB
    "0006"  # length: 7 words - 1
    "11111111"  # sender SSRC
    "22222222"  # media SSRC
    "0064"  # base sequence number 100
    "0004"  # packet status count 4
    "00000f"  # reference time 15 (x 64 ms = 0.960 s)
    "03"  # feedback packet count
    "d180"  # status vector, 2-bit symbols: 01 (small) 00 (lost) 01 (small) 10 (large) 00 00 00
    "a0"  # 100: 160 ticks
    "02"  # 102: 2 ticks
    "fffa"  # 103: -6 ticks
    "0002"  # padding: 2 bytes, the last one counting them
)


def test_feedback_encodes_as_decoded_by_hand() -> None:
    arrivals = [1_000_000, None, 1_000_500, 999_000]
    assert build_feedback(0x11111111, 0x22222222, 100, arrivals, 3) == HAND_DECODED
    fb = parse_feedback(HAND_DECODED)
    assert (fb.sender_ssrc, fb.media_ssrc, fb.base_seq, fb.reference_time, fb.feedback_count) == (
        0x11111111,
        0x22222222,
        100,
        15,
        3,
    )
    assert fb.arrivals == (40_000, None, 40_500, 39_000)


def test_long_runs_use_run_length_chunks() -> None:
    # 20 packets 1 ms apart, then 30 lost, then one: three run-length chunks
    arrivals: list[int | None] = [64_000 + 1000 * i for i in range(20)] + [None] * 30 + [200_000]
    data = build_feedback(1, 2, 65530, arrivals, 0)
    chunks = struct.unpack_from("!3H", data, 20)
    # symbol 1 x20, symbol 0 x30, then symbol 2 (117 ms after the 20th: more than a byte of ticks)
    assert chunks == (0x2000 | 20, 0x0000 | 30, 0x4000 | 1)
    fb = parse_feedback(data)
    assert fb.base_seq == 65530 and len(fb.arrivals) == 51
    assert fb.arrivals[:2] == (0, 1000) and fb.arrivals[20:50] == (None,) * 30 and fb.arrivals[50] == 136_000


def test_any_pattern_decodes_to_the_quantized_arrivals() -> None:
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 120)
        t = rng.randint(0, 10**9)
        arrivals: list[int | None] = []
        for _ in range(n):
            t += rng.choice([0, 250, 1000, 20_000, 70_000, -3000])
            arrivals.append(t if rng.random() > rng.choice([0.0, 0.3, 0.9]) else None)
        if all(a is None for a in arrivals):
            continue
        fb = parse_feedback(build_feedback(5, 6, rng.randint(0, 0xFFFF), arrivals, 9))
        ref = fb.reference_time * 64_000
        assert len(fb.arrivals) == n
        for sent, got in zip(arrivals, fb.arrivals):
            assert (sent is None) == (got is None)
            if sent is not None and got is not None:
                assert abs(ref + got - sent) <= 125  # half a tick, never accumulating


# two messages Chromium sent the SFU (tests/sfu/test_gcc.py decodes them too)
CHROMIUM_FEEDBACK = bytes.fromhex("afcd00070f3166893931aa090144000900b4ca262009d5000000000000000001")


def _decode(native_path: bool, data: bytes) -> Any:
    try:
        return native.feedback_decoder(native_path)(data)
    except ValueError as exc:
        return ("ValueError", str(exc))


def test_the_c_decoder_reads_every_message_as_the_python_one_does() -> None:
    """Subscribers' feedback is decoded in C on the native path (issue 24: feedback parsing belongs
    below the interpreter). Valid messages of every shape, and the same bytes cut, padded wrongly
    or flipped, give the same result or the same refusal in both."""
    c_decoder = native.feedback_decoder(True)
    assert c_decoder is not native.decode_feedback_py, "the native feedback decoder is not built"
    rng = random.Random(11)
    messages = [HAND_DECODED, CHROMIUM_FEEDBACK]
    for _ in range(400):
        n = rng.randint(1, 300)
        t = rng.randint(0, 10**9)
        arrivals: list[int | None] = []
        for _ in range(n):
            t += rng.choice([0, 250, 1000, 20_000, 70_000, -3000])
            arrivals.append(t if rng.random() > rng.choice([0.0, 0.3, 0.9]) else None)
        if any(a is not None for a in arrivals):
            messages.append(
                build_feedback(rng.getrandbits(32), rng.getrandbits(32), rng.randint(0, 0xFFFF), arrivals, 9)
            )
    for data in list(messages):
        for _ in range(6):
            broken = bytearray(data)
            what = rng.randrange(3)
            if what == 0:
                broken = broken[: rng.randrange(len(broken))]
            elif what == 1:
                i = rng.randrange(len(broken))
                broken[i] ^= 1 << rng.randrange(8)
            else:
                broken[-1] = rng.randrange(256)
            messages.append(bytes(broken))
    assert len(messages) > 2000
    for data in messages:
        assert _decode(True, data) == _decode(False, data), data.hex()
    fb = parse_feedback(CHROMIUM_FEEDBACK)
    assert fb.base_seq == 0x0144 and len(fb.arrivals) == 9


def _rtp(tseq: int, ssrc: int = 0xABCD, ext_id: int = 3, two_byte: bool = False) -> bytes:
    if two_byte:  # RFC 8285 two-byte form: id, length, value (padding byte, then ours)
        ext, profile = bytes([2, 3, 1, 2, 3, 0, ext_id, 2]) + struct.pack("!H", tseq), 0x1000
    else:  # one-byte form: abs-send-time (id 2, 3 bytes), then transport-cc (2 bytes)
        ext, profile = bytes([0x22, 1, 2, 3, (ext_id << 4) | 1]) + struct.pack("!H", tseq), 0xBEDE
    ext += bytes(-len(ext) % 4)
    header = struct.pack("!BBHII", 0x90, 96, tseq, 0, ssrc) + struct.pack("!HH", profile, len(ext) // 4)
    return header + ext + b"payload"


@pytest.fixture(params=["python", "native"])
def log_class(request: Any) -> type[ArrivalLog]:
    """Every responder case against the Python arrival log and the C one (sfu/rtp/_arrivals.pyx)."""
    cls = native.arrival_log_class(request.param == "native")
    assert (cls is not ArrivalLog) == (request.param == "native"), "the native arrival log is not built"
    return cls


def responder(log_class: type[ArrivalLog], send: Callable[[bytes], None] = lambda _m: None) -> TwccResponder:
    return TwccResponder(3, sender_ssrc=0x77, send=send, interval=60.0, log_class=log_class)


async def test_the_responder_reports_every_packet_once_with_losses_and_wraparound(log_class: type[ArrivalLog]) -> None:
    r = responder(log_class)
    t = 5_000_000
    for seq in (65533, 65534, 1, 0, 2):  # 65535 lost; 0 and 1 reordered across the wrap
        r.log.record(seq, t, 0xABCD)
        t += 1000
    (msg,) = r.feedback()
    fb = parse_feedback(msg)
    assert fb.base_seq == 65533 and fb.media_ssrc == 0xABCD and fb.sender_ssrc == 0x77
    got = [None if a is None else a - fb.arrivals[0] for a in fb.arrivals]  # type: ignore[operator]
    assert got == [0, 1000, None, 3000, 2000, 4000]
    assert r.feedback() == []  # nothing new
    r.log.record(65535, t)  # the lost one, too late: already reported lost
    r.log.record(4, t)  # 3 is missing so far
    (msg,) = r.feedback()
    fb = parse_feedback(msg)
    assert fb.base_seq == 3 and fb.feedback_count == 1 and fb.arrivals[0] is None and fb.arrivals[1] is not None
    r.close()


async def test_the_sequence_number_is_read_from_the_packet(log_class: type[ArrivalLog]) -> None:
    r = responder(log_class)
    r.on_rtp(_rtp(10, ssrc=0x1234))
    r.on_rtp(_rtp(11, ext_id=4))  # another extension id: not ours
    r.on_rtp(_rtp(12, ssrc=0x1234, two_byte=True))
    r.on_rtp(struct.pack("!BBHII", 0x80, 96, 13, 0, 1) + b"no extensions")
    (msg,) = r.feedback()
    fb = parse_feedback(msg)
    assert fb.base_seq == 10 and fb.media_ssrc == 0x1234
    assert [a is not None for a in fb.arrivals] == [True, False, True]
    r.close()


async def test_arrivals_take_the_transport_s_kernel_time_when_it_has_one(log_class: type[ArrivalLog]) -> None:
    stamps = [1_700_000_000.25, 0.0]  # the kernel's time of the first; none for the second
    r = TwccResponder(3, sender_ssrc=1, send=lambda _m: None, interval=60.0, log_class=log_class, clock=stamps.pop)
    r.on_rtp(_rtp(1))  # pops 0.0: read now
    r.on_rtp(_rtp(2))  # pops the kernel's time
    assert abs(r.log.arrival(1) / 1e6 - time.time()) < 5
    assert r.log.arrival(2) == 1_700_000_000_250_000
    r.close()


async def test_a_gap_longer_than_a_delta_can_hold_splits_the_feedback(log_class: type[ArrivalLog]) -> None:
    r = responder(log_class)
    r.log.record(10, 1_000_000)
    r.log.record(11, 10_000_000)  # 9 s of blackout: more than 2^15 ticks of 250 us
    first, second = (parse_feedback(m) for m in r.feedback())
    assert (first.base_seq, len(first.arrivals)) == (10, 1)
    assert (second.base_seq, len(second.arrivals)) == (11, 1)
    r.close()


async def test_after_a_jump_of_thousands_feedback_resumes_near_the_newest(log_class: type[ArrivalLog]) -> None:
    """A publisher that restarted its numbering (or 10 s of blackout at 1000 packets/s): the
    ring no longer holds what lies between, and thousands of losses are not worth a report."""
    r = responder(log_class)
    r.log.record(100, 1_000_000)
    assert len(r.feedback()) == 1
    for i in range(5):
        r.log.record(100 + 20_000 + i, 2_000_000 + i * 1000)  # 16 bits: wraps to 20100.. mod 65536
    (msg,) = r.feedback()
    fb = parse_feedback(msg)
    assert fb.base_seq == (100 + 20_000) & 0xFFFF and len(fb.arrivals) == 5
    assert r.feedback() == [] and not r.log.pending
    r.close()


async def test_feedback_goes_out_on_a_timer_while_packets_arrive(log_class: type[ArrivalLog]) -> None:
    got = asyncio.Event()
    sent: list[bytes] = []

    def send(message: bytes) -> None:
        sent.append(message)
        got.set()

    r = TwccResponder(3, sender_ssrc=1, send=send, interval=0.01, log_class=log_class)
    r.on_rtp(_rtp(1))
    r.on_rtp(_rtp(2))
    await asyncio.wait_for(got.wait(), 5)
    assert len(parse_feedback(sent[0]).arrivals) == 2
    r.close()


def test_malformed_feedback_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_feedback(HAND_DECODED[:22])
    with pytest.raises(ValueError):
        parse_feedback(b"\x81\xcd" + HAND_DECODED[2:])  # FMT 1 is a NACK


OFFER = "\r\n".join(
    [
        "v=0",
        "s=-",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=sendrecv",
        f"a=extmap:3 {URI_TRANSPORT_CC}",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:1",
        "a=sendonly",
        f"a=extmap:3 {URI_TRANSPORT_CC}",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:2",
        "a=recvonly",
        f"a=extmap:3 {URI_TRANSPORT_CC}",
        "",
    ]
)


def test_the_answer_keeps_transport_cc_on_the_video_the_client_sends() -> None:
    offered = twcc.parse_offer(OFFER)
    assert offered == {"1": 3}  # not audio, not the section the client only receives on
    # aiortc's answer knows neither the extension nor the feedback type
    answer = "\r\n".join(
        [
            "v=0",
            "s=-",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "a=mid:1",
            "a=recvonly",
            "a=rtpmap:96 VP8/90000",
            "a=rtpmap:97 rtx/90000",
            "a=rtcp-fb:96 nack",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "a=mid:2",
            "a=sendonly",
            "",
        ]
    )
    out = twcc.accept(answer, offered)
    _, audio, sending, receiving = out.split("m=")
    assert f"a=extmap:3 {URI_TRANSPORT_CC}\r\na=rtcp-fb:96 transport-cc\r\n" in sending
    assert "rtcp-fb:97 transport-cc" not in sending  # RTX carries no feedback type of its own
    assert "transport-cc" not in audio and "transport-cc" not in receiving
    assert twcc.accept(out, offered) == out  # re-offers stay the same
