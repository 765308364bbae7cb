"""The per-subscriber send-side estimate (sfu/rtp/gcc.py) and probing (sfu/rtp/probing.py) on
synthetic traces: a sender that follows the estimate through a bottleneck with a FIFO queue, the
feedback every 100 ms as a browser sends it."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Optional

import pytest

from sfu.rtp import native, twcc
from sfu.rtp.gcc import PacketResult, SendSideEstimate, packet_results
from sfu.rtp.probing import ProbeController
from sfu.rtp.sendlog import SendLog


def run_link(
    capacity: Callable[[float], float],
    *,
    seconds: float,
    est: Optional[SendSideEstimate] = None,
    loss: Callable[[float], float] = lambda t: 0.0,
    start_s: float = 0.0,
    seed: int = 1,
) -> tuple[SendSideEstimate, list[tuple[float, int]]]:
    """Send 1200-byte packets at the estimate through a bottleneck of ``capacity(t)`` bits/s
    (FIFO, 300 ms of queue, 20 ms one way); returns the estimator and its (t, estimate) trace."""
    est = est or SendSideEstimate()
    rnd = random.Random(seed)
    t = start_s * 1e6
    end = (start_s + seconds) * 1e6
    free_at = t
    seq = 0
    pending: list[PacketResult] = []
    next_feedback = t + 100_000
    trace: list[tuple[float, int]] = []
    while t < end:
        start_tx = max(t, free_at)
        arrival: Optional[int] = None
        if start_tx - t <= 300_000 and rnd.random() >= loss(t / 1e6):
            free_at = start_tx + 1200 * 8 / capacity(t / 1e6) * 1e6
            arrival = int(free_at + 20_000)
        elif start_tx - t <= 300_000:
            free_at = start_tx + 1200 * 8 / capacity(t / 1e6) * 1e6  # lost after the queue
        pending.append(PacketResult(seq, int(t), 1200, -1, arrival))
        seq += 1
        t += 1200 * 8 / est.bitrate * 1e6
        if t >= next_feedback:
            arrived = [p.seq for p in pending if p.arrival_us is not None and p.arrival_us <= t]
            if arrived:
                last = max(arrived)
                est.on_feedback([p for p in pending if p.seq <= last], int(t))
                pending = [p for p in pending if p.seq > last]
            next_feedback += 100_000
            trace.append((t / 1e6, est.bitrate))
    return est, trace


@pytest.mark.parametrize("capacity", [500_000, 1_200_000, 4_000_000])
def test_a_constant_capacity_is_found(capacity: int) -> None:
    _, trace = run_link(lambda t: capacity, seconds=30)
    late = [bps for t, bps in trace if t > 15]
    mean = sum(late) / len(late)
    print(f"capacity {capacity}: estimate {min(late)}..{max(late)}, mean {mean:.0f}")
    assert 0.7 * capacity <= mean <= 1.1 * capacity
    assert max(late) <= 1.3 * capacity


def test_a_growing_queue_brings_the_estimate_down_within_a_second_or_two() -> None:
    est, trace = run_link(lambda t: 2_000_000 if t < 10 else 300_000, seconds=16)
    before = [bps for t, bps in trace if 8 < t < 10]
    after = [bps for t, bps in trace if t > 12]
    assert min(before) > 1_400_000
    assert max(after) < 400_000, after
    down = next(t for t, bps in trace if t > 10 and bps < 400_000)
    print(f"2 -> 0.3 Mbit/s: under 0.4 Mbit/s {down - 10:.2f} s after the drop")
    assert down - 10 < 2.0


def test_loss_brings_the_estimate_down() -> None:
    # a path with room to spare (no queue builds), then 20 % random loss
    est, trace = run_link(lambda t: 20_000_000, seconds=12, loss=lambda t: 0.2 if t > 4 else 0.0)
    at4 = next(bps for t, bps in trace if t > 4)
    assert trace[-1][1] < 0.5 * at4
    assert est.loss > 0.1


def test_without_a_probe_the_estimate_climbs_only_slowly_and_a_probe_lifts_it() -> None:
    est, _ = run_link(lambda t: 300_000, seconds=8)
    low = est.bitrate
    assert low < 400_000
    # the bottleneck is gone, but what the sender sends is what it learns from
    est, trace = run_link(lambda t: 10_000_000, seconds=3, est=est, start_s=8)
    assert trace[-1][1] < 2 * low
    est.on_probe(2_400_000)
    assert est.bitrate == 2_400_000


def test_feedback_joins_the_send_log_across_a_wrap() -> None:
    for log in (SendLog(5), native.send_log_class(True)(5)):
        log.next = 0xFFFE  # the next numbers wrap
        sizes = [1000, 1100, 1200, 1300]
        seqs = [log.record(size, 1_000_000 + 5000 * i) for i, size in enumerate(sizes)]
        assert seqs == [0xFFFE, 0xFFFF, 0, 1]
        message = twcc.build_feedback(1, 2, 0xFFFE, [70_000, None, 80_000, 92_000], 0)
        results = packet_results(twcc.parse_feedback(message), log)
        assert [r.seq for r in results] == [0xFFFE, 0xFFFF, 0x10000, 0x10001]
        assert [r.size for r in results] == sizes
        assert results[1].arrival_us is None
        # arrival times keep their spacing (quantized to 250 us)
        assert results[2].arrival_us - results[0].arrival_us == 10_000
        assert results[3].arrival_us - results[2].arrival_us == 12_000


def test_a_hand_made_feedback_message_decodes() -> None:
    # base 0x0010, 5 statuses, reference 1 (64 ms), count 7; a two-bit status vector:
    # received small, received small, lost, received large, received small
    chunk = 0xC000 | (1 << 12) | (1 << 10) | (0 << 8) | (2 << 6) | (1 << 4)
    deltas = bytes([4]) + bytes([8]) + (-20).to_bytes(2, "big", signed=True) + bytes([40])
    body = (
        (1).to_bytes(4, "big")
        + (2).to_bytes(4, "big")
        + (0x10).to_bytes(2, "big")
        + (5).to_bytes(2, "big")
        + ((1 << 8) | 7).to_bytes(4, "big")
        + chunk.to_bytes(2, "big")
        + deltas
    )
    body += b"\x00" * (-len(body) % 4)
    packet = bytes([0x8F, 205]) + ((len(body) + 4) // 4 - 1).to_bytes(2, "big") + body
    fb = twcc.parse_feedback(packet)
    assert (fb.base_seq, fb.reference_time, fb.feedback_count) == (0x10, 1, 7)
    assert fb.arrivals == (1000, 3000, None, -2000, 8000)


class _Seq:
    def __init__(self) -> None:
        self.n = 0

    def take(self, count: int) -> range:
        r = range(self.n, self.n + count)
        self.n += count
        return r


def cluster_packets(
    seqs: range, cluster: int, *, send_gap_us: int, arrival_gap_us: int, lost: int = 0
) -> list[PacketResult]:
    return [
        PacketResult(
            s, 1_000_000 + i * send_gap_us, 1000, cluster, None if i < lost else 2_000_000 + i * arrival_gap_us
        )
        for i, s in enumerate(seqs)
    ]


def test_a_probe_that_gets_through_is_followed_by_the_next_one_at_once() -> None:
    probes = ProbeController()
    seq = _Seq()
    cluster = probes.want(estimate=300_000, needed=2_000_000, now=10.0)
    assert cluster is not None and 600_000 <= cluster.rate <= 1_800_000
    assert probes.want(estimate=300_000, needed=2_000_000, now=10.01) is None  # one in flight
    packets = cluster_packets(seq.take(10), cluster.id, send_gap_us=5000, arrival_gap_us=5000)
    cluster.last_seq = packets[-1].seq
    # 1000 bytes every 5 ms: 1.6 Mbit/s both ways, capped at what it aimed at
    measured = probes.on_results(packets[:6], now=10.1)
    assert measured is None  # the cluster's last packet is not reported yet
    measured = probes.on_results(packets[6:], now=10.15)
    assert measured == pytest.approx(min(1_600_000, cluster.rate), rel=0.01)
    assert probes.want(estimate=int(measured), needed=2_000_000, now=10.16) is not None


def test_a_probe_that_arrives_slower_than_it_left_backs_off() -> None:
    probes = ProbeController()
    seq = _Seq()
    cluster = probes.want(estimate=300_000, needed=2_000_000, now=10.0)
    assert cluster is not None
    packets = cluster_packets(seq.take(10), cluster.id, send_gap_us=5000, arrival_gap_us=25_000)
    cluster.last_seq = packets[-1].seq
    measured = probes.on_results(packets, now=10.2)
    assert measured == pytest.approx(320_000, rel=0.01)  # the link's rate
    assert probes.want(estimate=300_000, needed=2_000_000, now=10.6) is None
    assert probes.want(estimate=300_000, needed=2_000_000, now=10.8) is not None


def test_a_probe_mostly_lost_or_never_answered_backs_off() -> None:
    probes = ProbeController()
    seq = _Seq()
    cluster = probes.want(estimate=300_000, needed=2_000_000, now=10.0)
    assert cluster is not None
    packets = cluster_packets(seq.take(10), cluster.id, send_gap_us=5000, arrival_gap_us=5000, lost=5)
    cluster.last_seq = packets[-1].seq
    assert probes.on_results(packets, now=10.2) is None
    assert probes.want(estimate=300_000, needed=2_000_000, now=10.6) is None
    second = probes.want(estimate=300_000, needed=2_000_000, now=10.8)
    assert second is not None
    # no feedback at all: given up after two seconds, the next one waits longer
    assert probes.want(estimate=300_000, needed=2_000_000, now=12.9) is None
    assert probes.want(estimate=300_000, needed=2_000_000, now=13.5) is None
    assert probes.want(estimate=300_000, needed=2_000_000, now=14.0) is not None


def test_no_probe_when_the_estimate_covers_what_the_tiles_want() -> None:
    assert ProbeController().want(estimate=3_000_000, needed=2_000_000, now=1.0) is None


def test_chromium_s_own_feedback_decodes() -> None:
    # captured from Chromium 1xx receiving the SFU's video (tests/browser/test_room_probing.py prints
    # one): five packets numbered 0x61.. arrived in the same 250 us tick, 25.75 ms after the
    # reference time; one byte of RTCP padding
    packet = bytes.fromhex("afcd0006f5aa97746c1f9ac10061000500e9e1112005670000000001")
    fb = twcc.parse_feedback(packet)
    assert (fb.sender_ssrc, fb.media_ssrc) == (0xF5AA9774, 0x6C1F9AC1)
    assert (fb.base_seq, fb.reference_time, fb.feedback_count) == (0x61, 0xE9E1, 0x11)
    assert fb.arrivals == (25_750,) * 5
    # a mixed one: run-length and deltas over nine packets
    fb = twcc.parse_feedback(bytes.fromhex("afcd00070f3166893931aa090144000900b4ca262009d5000000000000000001"))
    assert fb.base_seq == 0x144 and len(fb.arrivals) == 9 and all(a is not None for a in fb.arrivals)
