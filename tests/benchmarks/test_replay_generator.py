"""The replay load generator against a real server: media flows both ways and arrives whole.

One room of 3 (``benchmarks/sfu_load.py --generator replay``, a small clip): every
subscriber receives every other participant's video and audio, each packet the
generator sent arrives twice (3 - 1 subscribers) with ~0 loss, the sampled packets
decrypt and match what was sent byte for byte. Figures are not asserted: tests
don't time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_room_of_three(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/sfu_load.py",
            "--generator",
            "replay",
            "--rooms",
            "1",
            "--participants",
            "3",
            "--duration",
            "4",
            "--warmup",
            "1",
            "--ramp",
            "0.2",
            "--no-baseline",
            "--width",
            "160",
            "--height",
            "120",
            "--clip-seconds",
            "2",
            "--out",
            str(tmp_path),
            "--no-plot",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(p for p in tmp_path.glob("sfu_load-2*.json")).read_text())
    (run,) = report["runs"]
    gen = run["generator"]
    assert run["join_failures"] == [] and run["signaling_errors"] == []
    assert run["streams_flowing"] == run["streams_expected"] == 3 * 2 * 2
    assert gen["kind"] == "replay" and gen["packets_sent_per_s"] > 0
    # every packet sent reaches the 2 other participants (the window's edges cut a few)
    assert 1.9 < gen["packets_received_per_s"] / gen["packets_sent_per_s"] < 2.1
    assert run["loss_pct"] < 0.5
    assert run["unknown_ssrc_packets"] == 0
    samples = gen["samples"]
    assert samples["decrypted"] == samples["sent_to_decrypt"] > 0
    assert samples["payload_mismatch"] == 0 and samples["matched_a_sent_frame"] > 0
    assert run["latency_ms"]["samples"] > 0
    assert run["join_to_first_frame_ms"]["missing"] == 0
