"""A re-offer that changes nothing for a subscriber asks no publisher for a keyframe: aiortc
hands the same send parameters over twice per re-offer (after our offer, after the answer),
and each keyframe is a burst of bits from the publisher's encoder and a soft picture for the
class. New parameters (another payload type) still get one: the subscriber's decoder needs it."""

from __future__ import annotations

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

from sfu.rtp import rtcp
from sfu.room.consumer import Consumer
from sfu.rtp.forwarding import CallSink
from sfu_fakes import ManualClock, make_producer


def _send_params(pt: int) -> RTCRtpSendParameters:
    return RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt)],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")],
        muxId="3",
    )


def _keyframe_requests(sent: list[bytes]) -> int:
    return sum(isinstance(m, rtcp.KeyframeRequest) for data in sent for m in rtcp.parse_rtcp(data))


def test_the_same_parameters_again_ask_for_no_keyframe_and_new_ones_do() -> None:
    clock = ManualClock()
    sent: list[bytes] = []
    producer = make_producer(clock, sent.append, mid="0")
    producer.configure(
        RTCRtpReceiveParameters(
            codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)],
            encodings=[RTCRtpDecodingParameters(ssrc=0x100, payloadType=96)],
        )
    )
    consumer = Consumer(subscriber_id="pe-l", producer=producer, clock=clock, history_size=64)
    sink = CallSink(lambda data: None)

    consumer.configure(_send_params(100), sink, "cname")  # the subscriber's first answer
    first = _keyframe_requests(sent)
    assert first == 1 and consumer.keyframe_requests == 1

    for _ in range(3):  # re-offers: after our offer and after the answer, nothing changed
        consumer.configure(_send_params(100), sink, "cname")
    assert _keyframe_requests(sent) == first and consumer.keyframe_requests == 1

    consumer.configure(_send_params(101), sink, "cname")  # another payload type: a new stream
    assert _keyframe_requests(sent) == first + 1 and consumer.keyframe_requests == 2
