"""The benchmarks still run and still report what docs/benchmarks.md promises (keys, never values: tests don't time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL_CLIP = ["--width", "160", "--height", "120", "--clip-seconds", "2"]


def _run(args: list[str], out: Path, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, *args, "--out", str(out), "--no-plot"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = sorted(p for p in out.glob("*.json") if not p.name.endswith("-latest.json"))
    assert reports, proc.stderr[-2000:]
    return json.loads(reports[-1].read_text())


def test_forwarding_micro_reports_each_stage(tmp_path: Path) -> None:
    report = _run(["benchmarks/forwarding_micro.py", "--packets", "300", "--repeat", "1", *SMALL_CLIP], tmp_path, 120)
    assert {"machine", "command", "loadavg", "result"} <= report.keys()
    result = report["result"]
    assert {"parse", "rewrite", "protect", "sendto", "sendto_asyncio", "floor", "full"} <= result[
        "us_per_packet"
    ].keys()
    assert {"full_over_floor", "fanout", "egress_packets_per_core_second"} <= result.keys()


def test_sfu_load_one_small_room(tmp_path: Path) -> None:
    report = _run(
        [
            "benchmarks/sfu_load.py",
            "--rooms",
            "1",
            "--participants",
            "2",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--ramp",
            "0.2",
            "--no-baseline",
            *SMALL_CLIP,
        ],
        tmp_path,
        300,
    )
    assert {"machine", "command", "params", "runs", "loadavg_start"} <= report.keys()
    (run,) = report["runs"]
    assert {
        "server_cpu_cores",
        "forwarded_packets_per_s",
        "cpu_us_per_forwarded_packet",
        "loss_pct",
        "latency_ms",
        "sfu_ingress_latency_ms",
        "join_to_first_frame_ms",
        "video_kbps_per_stream",
        "audio_kbps_per_stream",
        "nacks_to_publishers",
        "plis_to_publishers",
        "decoding_subscriber",
        "engine_counters",
        "loadavg",
        "udp_drops",
    } <= run.keys()
    assert {"sfu_sockets", "generator_sockets"} <= run["udp_drops"].keys()
    assert {"server_cpus", "generator_cpus"} <= report["pinning"].keys()
    assert run["join_failures"] == []


def test_room_quality_two_browsers(tmp_path: Path) -> None:
    report = _run(
        ["benchmarks/room_quality.py", "--learners", "1", "--stagger", "1", "--duration", "3", "--settle", "15"],
        tmp_path,
        240,
    )
    assert {"machine", "command", "order", "participants", "first_frame", "streams", "summary"} <= report.keys()
    assert report["participants"] == ["mentor", "learner-1"]
    # both directions were measured: each browser decoded the other's camera
    assert {(r["subscriber"], r["publisher"]) for r in report["first_frame"] if r["after_connected_s"] is not None} == {
        ("mentor", "learner-1"),
        ("learner-1", "mentor"),
    }
    assert {
        "first_frame_after_connected_s",
        "fps_received",
        "freezes",
        "longest_total_freeze_s",
        "loss_pct_max",
        "rtt_ms_max",
        "server_cpu_cores",
        "browsers_cpu_cores",
    } <= report["summary"].keys()


def test_sfu_load_against_janus(tmp_path: Path) -> None:
    """Issue 28: the same replayed rooms through Janus (Debian's package, started by the benchmark)
    right after ours, alternating, both sides' CPU per forwarded packet and their ratio in one
    report; Janus's subscribers get exactly the payloads the publishers sent (decrypted with the
    subscriber connection's own keys), and each side's terms are stated. ``--profile``: perf tells
    for both servers where their CPU per forwarded packet went."""
    from benchmarks.janus_peer import available

    if not available():
        pytest.skip("janus is not installed (make system-deps installs Debian's package)")
    report = _run(
        [
            "benchmarks/sfu_load.py",
            "--rooms",
            "1",
            "--participants",
            "3",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--ramp",
            "0.2",
            "--no-baseline",
            "--peer",
            "janus",
            "--pairs",
            "2",
            "--profile",
            *SMALL_CLIP,
        ],
        tmp_path,
        300,
    )
    assert report["params"]["generator"] == "replay"
    assert len(report["runs"]) == 2  # ours, janus, ours, janus
    (group,) = report["peer_pairs"]
    assert group["pairs"] == 2 and len(group["ratio_peer_over_ours_per_pair"]) == 2
    assert {"cpu_us_per_forwarded_packet", "ratio_peer_over_ours", "peer"} <= report.keys()
    assert report["peer"]["cpu_us_per_forwarded_packet"] and report["ratio_peer_over_ours"]
    for run in report["runs"]:
        peer = run["peer"]
        assert peer["name"] == "janus" and peer["mode"] == "janus" and peer["generator_kind"] == "replay"
        assert peer["join_failures"] == [] and peer["signaling_errors"] == []
        assert peer["streams_flowing"] == peer["streams_expected"] == run["streams_expected"] == 12
        samples = peer["generator"]["samples"]
        assert samples["matched_a_sent_frame"] > 0 and samples["payload_mismatch"] == 0
        for side in (run, peer):
            profile = side["cpu_profile"]
            assert profile["samples"] > 0
            per_bucket = profile["us_per_forwarded_packet"]
            assert sum(per_bucket.values()) == pytest.approx(side["cpu_us_per_forwarded_packet"], rel=0.02)
            assert 0 < profile["transport_us"] < side["cpu_us_per_forwarded_packet"]
            terms = side["negotiated"]
            assert terms["srtp_profile"].startswith("SRTP_")
            for direction in ("participant_sends", "participant_receives"):
                assert {"video", "audio"} <= terms[direction].keys()
                assert {"extensions", "twcc", "rtx", "codecs"} <= terms[direction]["video"].keys()
