"""Simulcast: the SDP the browser and the server exchange, the layer each subscriber gets,
and switching layers at keyframes with continuous numbering (packet level, no network)."""

from __future__ import annotations

import struct

from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

from sfu.rtp import rtcp, simulcast
from sfu.room.consumer import Consumer
from sfu.rtp.layers import DownlinkGauge, LayerState, RecordingFeed, choose_layer
from sfu.room.producer import Producer
from sfu.rtp.forwarding import CallSink
from sfu_fakes import ManualClock, make_producer

# the video m-section of Chromium 156's offer for sendEncodings [q, h, f] (trimmed)
CHROMIUM_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:1",
        "a=sendonly",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rid:q send",
        "a=rid:h send",
        "a=rid:f send",
        "a=simulcast:send q;h;f",
        "",
    ]
)


def test_the_offer_is_read_and_every_later_description_accepts_it() -> None:
    offers = simulcast.parse_offer(CHROMIUM_OFFER)
    assert offers == {"1": simulcast.SimulcastOffer(("q", "h", "f"), 10, 11)}
    # aiortc's answer has no simulcast: without it the browser would send one layer
    answer = "\r\n".join(
        [
            "v=0",
            "s=-",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "a=mid:1",
            "a=recvonly",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "",
        ]
    )
    out = simulcast.accept(answer, offers)
    video = out.split("m=video")[1]
    assert "a=rid:q recv\r\na=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv q;h;f" in video
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in video
    assert "rid" not in out.split("m=video")[0]  # the audio m-section is left alone
    assert simulcast.accept(out, offers) == out  # idempotent: re-offers stay the same
    # paused layers (~) are not expected; one layer is no simulcast
    assert simulcast.parse_offer(CHROMIUM_OFFER.replace("q;h;f", "~q;h;f"))["1"].rids == ("h", "f")
    assert simulcast.parse_offer(CHROMIUM_OFFER.replace("q;h;f", "f")) == {}


LAYERS = [LayerState(True, 150_000, 180), LayerState(True, 500_000, 360), LayerState(True, 1_400_000, 720)]


def test_layer_choice_rounds_up_to_the_tile_and_fits_the_downlink() -> None:
    assert choose_layer(LAYERS, current=2, estimate_bps=None, max_height=None) == 2
    assert choose_layer(LAYERS, current=2, estimate_bps=None, max_height=150) == 0  # a small tile
    # the smallest layer at least as tall as the tile: a 540-px tile gets 720 rows, not 360
    # upscaled 1.5x; a 1:1 learner's 420-px tile on a 1920x1080 window gets the top layer too
    assert choose_layer(LAYERS, current=0, estimate_bps=None, max_height=540) == 2
    assert choose_layer(LAYERS, current=1, estimate_bps=None, max_height=420) == 2
    assert choose_layer(LAYERS, current=2, estimate_bps=None, max_height=300) == 1
    # taller than every layer (full screen, speaker view): the top one
    assert choose_layer(LAYERS, current=0, estimate_bps=None, max_height=1600) == 2
    # a tile hidden (0) needs the smallest
    assert choose_layer(LAYERS, current=2, estimate_bps=None, max_height=0) == 0
    # layer heights unknown (no keyframe yet): nothing to round to, the best that fits
    unknown = [LayerState(True, 150_000, 0), LayerState(True, 500_000, 0), LayerState(True, 1_400_000, 0)]
    assert choose_layer(unknown, current=0, estimate_bps=None, max_height=200) == 2
    assert choose_layer(LAYERS, current=2, estimate_bps=300_000, max_height=None) == 0  # 300 kbit/s
    assert choose_layer(LAYERS, current=1, estimate_bps=600_000, max_height=None) == 1
    # going up needs room to spare, staying does not (no flapping at the threshold)
    assert choose_layer(LAYERS, current=1, estimate_bps=1_500_000, max_height=None) == 1
    assert choose_layer(LAYERS, current=2, estimate_bps=1_500_000, max_height=None) == 2
    # the size decides, the downlink caps: a 540-px tile on a 600 kbit/s link gets 360 rows
    assert choose_layer(LAYERS, current=1, estimate_bps=600_000, max_height=540) == 1
    # a layer the browser stopped sending is never chosen
    stopped = [LAYERS[0], LAYERS[1], LayerState(False, 0, 720)]
    assert choose_layer(stopped, current=2, estimate_bps=None, max_height=None) == 1


def test_a_tile_near_a_layer_height_does_not_flap() -> None:
    """A tile resized around 360 device pixels: a few percent of upscaling keeps the
    360-row layer; the 720-row layer is left only when 360 rows cover the tile."""
    on_360 = [choose_layer(LAYERS, current=1, estimate_bps=None, max_height=h) for h in (350, 375, 390, 380, 360)]
    assert on_360 == [1, 1, 1, 1, 1]
    on_720 = [choose_layer(LAYERS, current=2, estimate_bps=None, max_height=h) for h in (390, 375, 361)]
    assert on_720 == [2, 2, 2]
    assert choose_layer(LAYERS, current=2, estimate_bps=None, max_height=360) == 1
    assert choose_layer(LAYERS, current=1, estimate_bps=None, max_height=400) == 2  # clearly taller: up


def test_a_starved_top_layer_is_passed_over_for_the_smooth_one_below() -> None:
    """Under 5 % loss Chromium's encoder starved its 720p layer to 9 fps beside 360p at 24
    (docs/media-quality.md): a learner sees motion before pixels, so the 360-row layer wins,
    with hysteresis; where every layer moves slowly (a slide deck) nothing changes."""

    def ladder(*fps: float) -> list[LayerState]:
        return [LayerState(s.active, s.bitrate, s.height, f) for s, f in zip(LAYERS, fps)]

    starved = ladder(24, 24, 9)
    assert choose_layer(starved, current=1, estimate_bps=None, max_height=None) == 1
    assert choose_layer(starved, current=2, estimate_bps=None, max_height=1080) == 1
    assert choose_layer(ladder(24, 24, 23), current=1, estimate_bps=None, max_height=None) == 2
    # up needs 60 % of the frame rate below, staying 45 % (no flapping at the threshold)
    assert choose_layer(ladder(24, 24, 13), current=1, estimate_bps=None, max_height=None) == 1
    assert choose_layer(ladder(24, 24, 13), current=2, estimate_bps=None, max_height=None) == 2
    assert choose_layer(ladder(24, 24, 15), current=1, estimate_bps=None, max_height=None) == 2
    # a slow source everywhere is not starvation; an unmeasured ladder (0 fps) is left alone
    assert choose_layer(ladder(5, 5, 2), current=1, estimate_bps=None, max_height=None) == 2
    assert choose_layer(LAYERS, current=1, estimate_bps=None, max_height=None) == 2


def test_downlink_gauge_backs_off_on_congestion_and_retries_later() -> None:
    g = DownlinkGauge()
    g.on_report(now=10, loss=0.01, remb=None, sending_bps=1_400_000, since_switch=10)
    assert g.estimate(10) is None  # no sign of a limit
    g.on_report(now=11, loss=0.2, remb=None, sending_bps=1_400_000, since_switch=1)
    assert g.estimate(11) is None  # right after a switch the reports describe the old layer
    g.on_report(now=12, loss=0.2, remb=None, sending_bps=1_400_000, since_switch=5)
    assert g.estimate(12) == 1_190_000
    g.on_report(now=13, loss=None, remb=200_000, sending_bps=500_000, since_switch=5)
    assert g.estimate(13) == 425_000
    assert g.estimate(13 + 7) == 425_000 and g.estimate(13 + 9) is None  # a quiet spell lifts it
    g.on_report(now=26, loss=0.3, remb=None, sending_bps=500_000, since_switch=5)
    assert g.estimate(26 + 9) == 425_000 and g.estimate(26 + 17) is None  # the retry failed: waits longer


def _rtp(seq: int, ssrc: int, ext: bytes, keyframe: bool, pt: int = 96) -> bytes:
    block = ext + b"\x00" * (-len(ext) % 4)
    header = struct.pack("!BBHII", 0x90, pt, seq, seq * 3000, ssrc) + struct.pack("!HH", 0xBEDE, len(block) // 4)
    return header + block + bytes([0x10, 0x00 if keyframe else 0x01]) + b"\x9d\x01\x2a" + b"x" * 30


def test_each_subscriber_switches_at_a_keyframe_and_numbering_stays_continuous() -> None:
    clock = ManualClock()
    sent_rtcp: list[bytes] = []
    p = make_producer(clock, sent_rtcp.append)
    p.enable_simulcast(simulcast.SimulcastOffer(("q", "h", "f"), 10, 11))
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    p.configure(
        RTCRtpReceiveParameters(
            codecs=[vp8],
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid")],
        )
    )
    outs: dict[str, list[bytes]] = {"weak": [], "strong": []}
    consumers = {}
    for name in outs:
        c = Consumer(subscriber_id=name, producer=p, clock=clock, history_size=64)
        c.rewriter.ssrc = 0xAAAA
        c.configure(
            RTCRtpSendParameters(
                codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)]
            ),
            CallSink(outs[name].append),
            "cname",
        )
        consumers[name] = c
    ssrcs = {0: 0x100, 1: 0x200, 2: 0x300}
    for layer, ssrc in ssrcs.items():
        p.learn_layer_ssrc(layer, ssrc)
    seq = 1

    def burst(keyframe: bool) -> None:
        nonlocal seq
        for layer, ssrc in ssrcs.items():
            p.layers[layer].on_rtp(_rtp(seq, ssrc, b"", keyframe))
        seq += 1
        clock.now += 0.1

    burst(True)  # everyone starts on the top layer's keyframe
    for _ in range(40):
        burst(False)
    assert [c.layer for c in consumers.values()] == [2, 2]
    # the weak subscriber reports 30 % loss: it is moved down, at the next keyframe only
    consumers["weak"].on_receiver_report(rtcp.ReportBlock(0xAAAA, int(0.3 * 256), 0, 0, 0, 0, 0))
    assert consumers["weak"].switch is not None and consumers["weak"].switch.target < 2
    before = len(outs["weak"])
    burst(False)
    assert consumers["weak"].layer == 2 and len(outs["weak"]) == before + 1  # still the old layer
    burst(True)
    assert consumers["weak"].layer == consumers["weak"].switch.target < 2
    assert consumers["strong"].layer == 2  # the others keep the top layer
    # one stream for the subscriber: its SSRC, and sequence numbers without a gap
    weak_seqs = [struct.unpack_from("!H", pkt, 2)[0] for pkt in outs["weak"]]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(weak_seqs, weak_seqs[1:]))
    assert {struct.unpack_from("!I", pkt, 8)[0] for pkt in outs["weak"]} == {0xAAAA}


def test_the_recording_feed_follows_the_best_sending_layer() -> None:
    clock = ManualClock()
    p = make_producer(clock)
    p.enable_simulcast(simulcast.SimulcastOffer(("q", "h", "f"), 10))
    p.configure(
        RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)])
    )
    recorded: list[bytes] = []
    taps = [lambda _pid, _kind, data: recorded.append(data)]
    feed = RecordingFeed(
        producer_id=p.id,
        kind="video",
        layers=3,
        clock_rate=90000,
        ssrc=0x77,
        taps=taps,
        request_keyframe=p.request_keyframe,
    )
    p.attach(feed.switch)
    for seq in range(1, 30):  # the browser stopped sending the top layer: two layers only
        for layer, ssrc in ((0, 0x100), (1, 0x200)):
            p.layers[layer].on_rtp(_rtp(seq, ssrc, b"", seq % 10 == 1))
        clock.now += 0.1
        feed.update(p.layer_states(), [96])
    assert feed.switch.current == 1 and recorded
    assert {struct.unpack_from("!I", pkt, 8)[0] for pkt in recorded} == {0x77}
    taps.clear()
    feed.update(p.layer_states(), [96])
    assert not feed.switch.enabled  # nobody records: the feed sleeps


async def test_a_packet_lost_on_the_uplink_is_asked_for_again_and_repaired_for_everyone() -> None:
    clock = ManualClock()
    sent: list[bytes] = []
    p = make_producer(clock, sent.append, keyframe_interval=1.0)
    p.configure(
        RTCRtpReceiveParameters(
            codecs=[
                RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
                RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}),
            ]
        )
    )
    p.ssrc = 0x100
    got: list[bytes] = []
    c = Consumer(subscriber_id="s", producer=p, clock=clock, history_size=64)
    c.configure(
        RTCRtpSendParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)]),
        CallSink(got.append),
        "cname",
    )
    for seq in (1, 2, 5):  # 3 and 4 never arrive
        p.forwarder.on_rtp(_rtp(seq, 0x100, b"", seq == 1))
    nacks = [m for pkt in sent for m in rtcp.parse_rtcp(pkt) if isinstance(m, rtcp.Nack)]
    assert [(n.media_ssrc, sorted(n.lost)) for n in nacks] == [(0x100, [3, 4])]
    # the publisher retransmits 3 over RTX: it reaches the subscriber, and only 4 is asked again
    rtx = _rtp(500, 0x101, b"", False, pt=97)
    payload_at = len(rtx) - 35
    p.forwarder.on_rtp(rtx[:payload_at] + (3).to_bytes(2, "big") + rtx[payload_at:])
    assert len(got) == 4
    assert p.forwarder.nack is not None and p.forwarder.nack.repaired == 1
    sent.clear()
    # a round trip later (the retry timer's work, on the test's clock)
    clock.now += p.forwarder.nack.retry_interval
    p.forwarder.nack._retry()
    again = [m for pkt in sent for m in rtcp.parse_rtcp(pkt) if isinstance(m, rtcp.Nack)]
    assert [sorted(n.lost) for n in again] == [[4]]
    p.close()


def _one_subscriber() -> tuple[Producer, Consumer, list[bytes]]:
    """A simulcast camera (q, h, f) and one subscriber: what the subscriber is sent."""
    clock = ManualClock()
    p = make_producer(clock)
    p.enable_simulcast(simulcast.SimulcastOffer(("q", "h", "f"), 10))
    p.configure(
        RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)])
    )
    got: list[bytes] = []
    c = Consumer(subscriber_id="s", producer=p, clock=clock, history_size=64)
    c.configure(
        RTCRtpSendParameters(codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)]),
        CallSink(got.append),
        "cname",
    )
    return p, c, got


def test_a_new_subscriber_starts_on_the_first_keyframe_of_any_layer() -> None:
    """A browser ramps its layers up: the top layer may not be sending when someone joins.
    The picture starts on whichever layer brings a keyframe first, then moves to the target."""
    p, c, got = _one_subscriber()
    assert c.switch is not None and c.switch.target == 2
    p.layers[0].on_rtp(_rtp(1, 0x100, b"", True))  # only the small layer is sending yet
    assert c.layer == 0 and len(got) == 1
    p.layers[2].on_rtp(_rtp(1, 0x300, b"", False))
    p.layers[2].on_rtp(_rtp(2, 0x300, b"", True))  # the top layer's keyframe: the target takes over
    assert c.layer == 2 and len(got) == 2


def test_a_switch_never_lands_on_a_keyframe_whose_first_packet_came_after_the_rest() -> None:
    """Under loss the first packet of a keyframe can be lost and repaired: it then arrives
    after the rest of the frame, which was not the subscriber's layer yet and went nowhere.
    Switching on it would leave the learner a keyframe it can never decode (3.5 s of a frozen
    picture seen in the 5 % loss test); the switch waits for a whole keyframe instead."""
    p, c, got = _one_subscriber()
    assert c.switch is not None
    p.layers[1].on_rtp(_rtp(1, 0x200, b"", True))
    p.layers[1].on_rtp(_rtp(2, 0x200, b"", False))
    assert c.layer == 1 and len(got) == 2  # on h, heading for f
    # f's keyframe: its first packet (seq 10) lost, the next two arrive, then the repair
    p.layers[2].on_rtp(_rtp(11, 0x300, b"", False))
    p.layers[2].on_rtp(_rtp(12, 0x300, b"", False))
    p.layers[2].on_rtp(_rtp(10, 0x300, b"", True))
    p.layers[1].on_rtp(_rtp(3, 0x200, b"", False))
    assert c.layer == 1 and c.switch.late_keyframes == 1 and len(got) == 3  # still h, unbroken
    p.layers[2].on_rtp(_rtp(13, 0x300, b"", True))  # the next keyframe, whole
    assert c.layer == 2 and len(got) == 4


def test_a_switch_takes_a_late_keyframe_rather_than_none() -> None:
    """A first picture starts on any keyframe (nothing plays yet), and a switch passes over
    two late keyframes at most: a publisher whose keyframes all come as repairs is still seen."""
    p, c, got = _one_subscriber()
    assert c.switch is not None
    p.layers[1].on_rtp(_rtp(6, 0x200, b"", False))
    p.layers[1].on_rtp(_rtp(5, 0x200, b"", True))  # late, but the first picture
    assert c.layer == 1 and len(got) == 1
    for seq in (20, 30, 40):
        p.layers[2].on_rtp(_rtp(seq + 1, 0x300, b"", False))
        p.layers[2].on_rtp(_rtp(seq, 0x300, b"", True))
    assert c.layer == 2 and c.switch.late_keyframes == 2  # the third late keyframe was taken


def test_a_simulcast_publisher_gets_reports_on_each_layer_from_its_first_packet() -> None:
    """Chrome starts a simulcast camera on its small layers and adds the top one only when
    its estimate allows: reports must describe the small layers at once, not wait for it."""
    clock = ManualClock()
    p = make_producer(clock, lambda _data: None, keyframe_interval=1.0)
    p.enable_simulcast(simulcast.SimulcastOffer(("q", "h", "f"), 10, 11))
    assert p.feedback() == b""  # nothing received yet: nothing to report on
    p.learn_layer_ssrc(0, 0x100)
    p.layers[0].on_rtp(_rtp(7, 0x100, b"", True))
    (rr,) = rtcp.parse_rtcp(p.feedback())
    assert isinstance(rr, rtcp.ReceiverReport)
    assert [(b.ssrc, b.highest_sequence & 0xFFFF) for b in rr.reports] == [(0x100, 7)]
    p.learn_layer_ssrc(1, 0x200)
    p.layers[1].on_rtp(_rtp(9, 0x200, b"", True))
    (rr,) = rtcp.parse_rtcp(p.feedback())
    assert isinstance(rr, rtcp.ReceiverReport)
    assert [b.ssrc for b in rr.reports] == [0x100, 0x200]
    p.close()
