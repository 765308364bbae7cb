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
