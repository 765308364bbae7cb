"""Upstream NACK: what the SFU asks a publisher to resend, when, and when it gives up.

The timer is driven by hand (``_retry`` is what its ``call_later`` runs) on a fake clock,
so the pacing is checked without sleeping."""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters

from sfu.room.consumer import Consumer
from sfu.rtp import rtcp
from sfu.rtp.forwarding import CallSink
from sfu.rtp.upstream_nack import DEFAULT_RTT, MAX_AGE, MAX_TRIES, UpstreamNack
from sfu_fakes import ManualClock
from tests.sfu.test_producer_feedback import _vp8_packet, producer


def nack(clock: ManualClock) -> tuple[UpstreamNack, list[list[int]], list[int]]:
    sent: list[list[int]] = []
    lost: list[int] = []
    return UpstreamNack(clock, sent.append, lambda: lost.append(1)), sent, lost


def test_a_gap_is_asked_for_at_once_and_again_only_after_a_round_trip() -> None:
    clock = ManualClock(1000.0)
    n, sent, _ = nack(clock)
    n.missing([10, 11])
    assert sent == [[10, 11]]
    # before any repair is timed the round trip is taken as 100 ms: a retry sooner than
    # that would reach a browser that ignores NACKs within its RTT of its last resend
    clock.now += DEFAULT_RTT * 0.9
    n._retry()
    assert sent == [[10, 11]]
    clock.now += DEFAULT_RTT * 0.4
    n._retry()
    assert sent == [[10, 11], [10, 11]]
    assert n.requested == 2 and n.retried == 2


def test_the_round_trip_is_learnt_from_repairs() -> None:
    clock = ManualClock(1000.0)
    n, sent, _ = nack(clock)
    n.missing([1])
    clock.now += 0.3  # a 300 ms path: the default 100 ms would retry three times too early
    n.arrived(1)
    assert abs(n.rtt - 0.3) < 1e-9 and n.repaired == 1
    n.missing([5])
    clock.now += 0.2
    n._retry()
    assert sent == [[1], [5]]  # no retry inside the 300 ms round trip
    clock.now += 0.2
    n._retry()
    assert sent == [[1], [5], [5]]
    for seq in range(100, 140):  # then 80 ms repairs: the estimate follows, smoothed
        n.missing([seq])
        clock.now += 0.08
        n.arrived(seq)
    assert 0.079 < n.rtt < 0.09
    assert 0.09 < n.retry_interval < 0.12


def test_a_lost_retransmission_is_asked_for_again_until_it_comes() -> None:
    """5 % loss on an 80 ms path: the first retransmission is lost 1 time in 20; the
    packet must be asked for again after a round trip, not given up after 80 ms."""
    clock = ManualClock(1000.0)
    n, sent, lost = nack(clock)
    n.missing([7])
    clock.now += 0.085
    n.arrived(7)  # times the path
    n.missing([8])
    for _ in range(4):  # its retransmissions are lost, four times
        clock.now += n.retry_interval
        n._retry()
    assert sent == [[7]] + [[8]] * 5
    clock.now += 0.085
    n.arrived(8)
    assert n.pending == 0 and n.given_up == 0 and not lost


def test_a_packet_never_repaired_is_given_up_and_a_keyframe_asked_for() -> None:
    clock = ManualClock(1000.0)
    n, sent, lost = nack(clock)
    n.missing([2])
    clock.now += 0.03
    n.arrived(2)  # a 30 ms path: the tries run out before the age limit
    n.missing([3])
    for _ in range(MAX_TRIES + 2):
        clock.now += n.retry_interval
        n._retry()
    assert sent == [[2]] + [[3]] * MAX_TRIES and n.pending == 0 and n.given_up == 1 and lost == [1]


def test_nothing_older_than_max_age_is_asked_for() -> None:
    clock = ManualClock(1000.0)
    n, sent, lost = nack(clock)
    n.missing([3])
    clock.now += 0.3
    n.arrived(3)  # a 300 ms path: retries every ~0.37 s
    n.missing([4])
    clock.now += MAX_AGE + 0.01
    n._retry()
    assert sent == [[3], [4]] and n.given_up == 1 and lost == [1]


async def test_a_packet_given_up_makes_the_producer_ask_for_a_keyframe() -> None:
    """The subscribers hold a frame that cannot be decoded: the publisher is asked for a
    keyframe when the SFU gives the packet up (Chrome itself would wait ~3 s)."""
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = producer(clock, sent)
    c = Consumer(subscriber_id="pe-b", producer=p, clock=clock, history_size=16)
    c.rewriter.ssrc = 0x2222
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    c.configure(RTCRtpSendParameters(codecs=[codec]), CallSink([].append), "cname")
    p.forwarder.on_rtp(_vp8_packet(96, 1, keyframe=True))
    clock.now += 0.03
    p.forwarder.on_rtp(_vp8_packet(96, 3, keyframe=False))  # 2 is lost
    nacks = [m for m in rtcp.parse_rtcp(sent[-1]) if isinstance(m, rtcp.Nack)]
    assert nacks and nacks[0].lost == [2]
    plis = sum(isinstance(m, rtcp.KeyframeRequest) for pkt in sent for m in rtcp.parse_rtcp(pkt))
    nack_state = p.forwarder.nack
    assert nack_state is not None
    for _ in range(MAX_TRIES + 1):  # 1.25 s: past the keyframe requests' 1 s limit too
        clock.now += nack_state.retry_interval
        nack_state._retry()
    after = sum(isinstance(m, rtcp.KeyframeRequest) for pkt in sent for m in rtcp.parse_rtcp(pkt))
    assert nack_state.given_up == 1 and after == plis + 1
    c.close()
    p.close()


async def test_a_reordered_original_is_no_longer_asked_for_and_does_not_time_the_round_trip() -> None:
    """Through the forwarder (the C one, or its twin with PEERLEARN_SFU_NATIVE=0): a packet
    that only came late is dropped from the NACK list; only retransmissions time the path."""
    clock = ManualClock(1000.0)
    sent: list[bytes] = []
    p = producer(clock, sent)
    nack_state = p.forwarder.nack
    assert nack_state is not None
    p.forwarder.on_rtp(_vp8_packet(96, 1, keyframe=True))
    clock.now += 0.01
    p.forwarder.on_rtp(_vp8_packet(96, 3, keyframe=False))  # 2 is missing: NACKed
    assert nack_state.pending == 1
    clock.now += 0.002
    p.forwarder.on_rtp(_vp8_packet(96, 2, keyframe=False))  # it was only late
    assert nack_state.pending == 0 and nack_state.repaired == 1
    assert nack_state.rtt == DEFAULT_RTT  # 2 ms of reordering is not the round trip
    p.close()
