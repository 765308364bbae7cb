"""The API load tools still run and report what docs/benchmarks.md promises (keys only: tests never time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from benchmarks.common import LocalServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("wrk") is None and not os.environ.get("PEERLEARN_FORBID_SKIPS"),
    reason="wrk is not installed (apt-get install wrk)",
)
def test_api_wrk_reports_each_mode(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/api_wrk.py",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--connections",
            "4",
            "--modes",
            "browse,detail",
            "--out",
            str(tmp_path),
            "--no-plot",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(p for p in tmp_path.glob("api_wrk-2*.json")).read_text())
    assert {"machine", "command", "params", "loadavg", "result"} <= report.keys()
    for mode in ("browse", "detail"):
        run = report["result"][mode]
        assert {
            "requests",
            "rps",
            "latency_ms",
            "errors",
            "server_cpu_ms_per_request",
            "server_runqueue_wait_share",
            "wrk_cpu_ms_per_request",
        } <= run.keys()
        assert run["errors"]["non_2xx"] == 0 and run["requests"] > 0


def test_locustfile_runs_headless_against_a_server() -> None:
    server = LocalServer(Path(tempfile.mkdtemp(prefix="pl-locust-")))
    server.start()
    try:
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    "benchmarks/locustfile.py",
                    "--host",
                    server.url,
                    "--headless",
                    "-u",
                    "3",
                    "-r",
                    "3",
                    "-t",
                    "3s",
                    "--csv",
                    f"{out}/locust",
                    "--only-summary",
                    "--exit-code-on-error",
                    "1",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            stats = (Path(out) / "locust_stats.csv").read_text()
    finally:
        server.stop()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "/api/auth/login" in stats and "/ws connect" in stats and "Aggregated" in stats


def test_realtime_fanout_small(tmp_path: Path) -> None:
    """Issue 28: the fan-out benchmark seeds watchers, holds their sockets, books seats and reports
    every delivery (a few sockets here; 10,000 is the benchmark's default)."""
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/realtime_fanout.py",
            "--sockets",
            "30",
            "--changes",
            "3",
            "--interval",
            "0.1",
            "--procs",
            "2",
            "--out",
            str(tmp_path),
            "--no-plot",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(next(p for p in tmp_path.glob("realtime_fanout-2*.json")).read_text())
    assert {"machine", "command", "params", "loadavg", "result"} <= report.keys()
    result = report["result"]
    assert {
        "latency_ms",
        "messages_lost",
        "sockets_closed",
        "server_kb_per_socket",
        "server_cpu_us_per_delivered_message",
        "generator_cpu_seconds_burst",
        "loadavg_before_burst",
        "fd_limit",
    } <= result.keys()
    assert {"p50", "p99", "max"} <= result["latency_ms"].keys()
    # every watcher held its socket and read every seat change
    assert result["sockets_held"] == 30 and result["connect_failures"] == {}
    assert result["booking_statuses"] == {"201": 3}
    assert result["messages_delivered"] == result["messages_expected"] == 90
    assert result["messages_lost"] == 0 and result["sockets_closed"] == {}
