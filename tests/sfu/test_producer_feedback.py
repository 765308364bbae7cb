"""Keyframe request rate limit, REMB aggregation, sender reports, RTCP codec."""

from __future__ import annotations

import asyncio

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

from sfu.rtp import rtcp
from sfu.room.consumer import Consumer
from sfu.room.producer import Producer
from sfu.rtp.forwarding import CallSink
from sfu_fakes import ManualClock, make_producer


def producer(clock: ManualClock, sent: list[bytes], kind: str = "video") -> Producer:
    p = make_producer(
        clock,
        sent.append,
        peer_id="pe-a",
        user_key="alice",
        kind=kind,
        source="camera" if kind == "video" else "mic",
        mid="0",
        rtcp_ssrc=0x5555,
        keyframe_interval=1.0,
    )
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    p.configure(
        RTCRtpReceiveParameters(codecs=[codec], encodings=[RTCRtpDecodingParameters(ssrc=0x1111, payloadType=96)])
    )
    return p


async def test_keyframe_requests_reach_publisher_at_most_once_per_second() -> None:
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = producer(clock, sent)
    for _ in range(50):  # a burst of PLIs from many consumers
        p.request_keyframe()
        clock.now += 0.01
    assert len(sent) == 1
    pli = rtcp.parse_rtcp(sent[0])[0]
    assert isinstance(pli, rtcp.KeyframeRequest) and pli.media_ssrcs == [0x1111] and pli.sender_ssrc == 0x5555
    clock.now += 0.6  # 1.1 s after the first
    p.request_keyframe()
    assert len(sent) == 2
    p.close()


async def test_deferred_keyframe_request_is_not_lost() -> None:
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = make_producer(clock, sent.append, peer_id="pe-a", user_key="alice", mid="0", keyframe_interval=0.05)
    p.ssrc = 7
    p.request_keyframe()
    p.request_keyframe()  # inside the interval: scheduled, not dropped
    assert len(sent) == 1
    clock.now += 0.05
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    p._send_rtcp = lambda data: (sent.append(data), done.done() or done.set_result(None))  # type: ignore[assignment]
    await asyncio.wait_for(done, 5)
    assert len(sent) == 2


async def test_remb_minimum_reaches_publisher_with_receiver_report() -> None:
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = producer(clock, sent)
    p.on_remb("c1", 900_000)
    p.on_remb("c2", 300_000)
    p.on_sender_report(rtcp.SenderReport(0x1111, 0x0123456789ABCDEF, 5000, 10, 1000))
    clock.now += 0.25
    messages = rtcp.parse_rtcp(p.feedback())
    rr = next(m for m in messages if isinstance(m, rtcp.ReceiverReport))
    remb = next(m for m in messages if isinstance(m, rtcp.Remb))
    assert remb.bitrate == 300_000 and remb.ssrcs == [0x1111]
    assert rr.reports[0].ssrc == 0x1111 and rr.reports[0].lsr == 0x456789AB
    assert rr.reports[0].dlsr == 65536 // 4
    # nothing new: no REMB repeated
    assert not any(isinstance(m, rtcp.Remb) for m in rtcp.parse_rtcp(p.feedback()))


async def test_consumer_sender_report_maps_publisher_clock() -> None:
    clock = ManualClock(1000.0)
    p = producer(clock, [])
    c = Consumer(subscriber_id="pe-b", producer=p, clock=clock, history_size=16)
    rw = c.rewriter
    rw.ssrc = 0x2222
    rw.synced = True
    rw.ts_off = 1_000_000
    rw.packets, rw.octets = 5, 500
    p.on_sender_report(rtcp.SenderReport(0x1111, 1 << 40, 90_000, 1, 1))
    clock.now += 2.0
    sr = next(m for m in rtcp.parse_rtcp(c.sender_report()) if isinstance(m, rtcp.SenderReport))
    assert sr.ssrc == 0x2222
    assert sr.rtp_timestamp == 90_000 + 2 * 90_000 + 1_000_000
    assert sr.packet_count == 5 and sr.octet_count == 500
    c.close()
    assert c.producer is None and c.rewriter not in p.forwarder.rewriters


def test_rtcp_round_trip() -> None:
    nack = rtcp.build_nack(1, 2, [100, 101, 116, 117, 300])
    assert rtcp.parse_rtcp(nack) == [rtcp.Nack(1, 2, [100, 101, 116, 117, 300])]
    remb = rtcp.parse_rtcp(rtcp.build_remb(1, 1_234_567, [3, 4]))[0]
    assert isinstance(remb, rtcp.Remb) and remb.ssrcs == [3, 4] and abs(remb.bitrate - 1_234_567) < 10
    compound = rtcp.build_sr(9, 1 << 33, 7, 1, 2) + rtcp.build_sdes(9, "cname") + rtcp.build_pli(1, 9)
    kinds = [type(m).__name__ for m in rtcp.parse_rtcp(compound)]
    assert kinds == ["SenderReport", "KeyframeRequest"]
    assert rtcp.parse_rtcp(b"\x00\x01garbage") == []
    assert rtcp.parse_rtcp(compound[:-3]) != []  # the valid prefix survives


def _vp8_packet(pt: int, seq: int, keyframe: bool, ssrc: int = 0x1111) -> bytes:
    # RTP header + VP8 payload descriptor (S=1, partition 0) + the frame's first byte
    # (bit 0 clear: a key frame) and some payload
    header = bytes([0x80, pt]) + seq.to_bytes(2, "big") + (9000 * seq).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    return header + bytes([0x10, 0x00 if keyframe else 0x01]) + b"\x9d\x01\x2a" + b"x" * 40


async def test_renumbered_payload_types_keep_forwarding_vp8() -> None:
    """Issue 12: Chromium first offers VP8 96 / RTX 97; the server's re-offer renumbers the
    m-line to VP8 97 / RTX 98 and the browser sends VP8 on 97 from then on. Those packets
    must be forwarded as VP8 (keyframes recognised), not taken for RTX of the old 96."""
    clock = ManualClock(1000.0)
    p = make_producer(clock, peer_id="pe-a", user_key="alice", keyframe_interval=1.0)

    def params(vp8: int, rtx: int) -> RTCRtpReceiveParameters:
        return RTCRtpReceiveParameters(
            codecs=[
                RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=vp8),
                RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=rtx, parameters={"apt": vp8}),
            ],
            encodings=[RTCRtpDecodingParameters(ssrc=0x1111, payloadType=vp8)],
        )

    p.configure(params(96, 97))  # the browser's first offer
    sub_codecs = [
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=120),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=121, parameters={"apt": 120}),
    ]
    consumer = Consumer(subscriber_id="pe-b", producer=p, clock=clock, history_size=64)
    out: list[bytes] = []
    consumer.rewriter.ssrc = 0xAAAA

    consumer.configure(RTCRtpSendParameters(codecs=sub_codecs), CallSink(out.append), "cname")
    p.configure(params(97, 98))  # the server's re-offer, answered by the browser
    consumer.refresh()  # as the router does for a producer's consumers once it is configured

    p.forwarder.on_rtp(_vp8_packet(97, 1, keyframe=True))
    p.forwarder.on_rtp(_vp8_packet(97, 2, keyframe=False))
    p.forwarder.on_rtp(_vp8_packet(96, 3, keyframe=False))  # still in flight on the old number
    assert len(out) == 3, consumer.rewriter.dropped
    assert [pkt[1] & 0x7F for pkt in out] == [120, 120, 120]
    # the payload went through whole (an RTX unwrap would have eaten two bytes)
    assert out[0][12:] == _vp8_packet(97, 1, keyframe=True)[12:]
    # a retransmission on the new RTX payload type carries its original sequence number
    rtx = bytes([0x80, 98]) + (500).to_bytes(2, "big") + (9000 * 4).to_bytes(4, "big") + (0x2222).to_bytes(4, "big")
    p.forwarder.on_rtp(rtx + (4).to_bytes(2, "big") + _vp8_packet(97, 4, keyframe=False)[12:])
    assert len(out) == 4 and out[3][1] & 0x7F == 120
    p.close()


async def test_after_a_blackout_the_publisher_is_asked_for_a_keyframe_at_once() -> None:
    """The first packet after 3 s of silence follows a hole nobody can repair: the
    subscriber is held until a keyframe, which the publisher is asked for right away
    (not after the subscriber's decoder gives up, seconds later)."""
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = producer(clock, sent)
    c = Consumer(subscriber_id="pe-b", producer=p, clock=clock, history_size=16)
    c.rewriter.ssrc = 0x2222
    out: list[bytes] = []
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    c.configure(RTCRtpSendParameters(codecs=[codec]), CallSink(out.append), "cname")
    for seq in range(1, 4):
        p.forwarder.on_rtp(_vp8_packet(96, seq, keyframe=seq == 1))
        clock.now += 0.03
    assert len(out) == 3
    plis = len(sent)
    clock.now += 3.0
    p.forwarder.on_rtp(_vp8_packet(96, 100, keyframe=False))
    assert len(out) == 3 and p.gaps == 1  # held back: it cannot be decoded
    assert len(sent) == plis + 1 and isinstance(rtcp.parse_rtcp(sent[-1])[0], rtcp.KeyframeRequest)
    p.forwarder.on_rtp(_vp8_packet(96, 101, keyframe=True))
    assert len(out) == 4
    seqs = [int.from_bytes(pkt[2:4], "big") for pkt in out]
    assert seqs[3] == (seqs[2] + 1) & 0xFFFF  # nothing for the subscriber to NACK
    c.close()
    p.close()
