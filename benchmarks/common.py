"""Shared helpers for the benchmarks: machine description, JSON/plot output, a server to run."""

from __future__ import annotations

import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def write_report(name: str, report: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(report, indent=2, default=str))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 60, what: str = "server", ready: Callable[[], bool] = lambda: True) -> None:
    """Block until ``url``/healthz answers (and ``ready()`` holds), or raise."""
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                if ready():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


class LocalServer:
    """``peerlearn serve`` in a subprocess with its own data dir (demo data loaded)."""

    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None, demo: bool = True) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            **os.environ,
            "PEERLEARN_ACCESS_LOG": "false",
            "PEERLEARN_LOG_LEVEL": "WARNING",
            "PEERLEARN_AUTH_RATE_LIMIT": "100000",
            # load generators register throwaway accounts nobody can confirm by e-mail
            "PEERLEARN_REQUIRE_VERIFIED_EMAIL": "false",
            **(env or {}),
        }
        self.demo = demo
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cli = [sys.executable, "-m", "api.cli"]
        if self.demo:
            subprocess.run(
                [*cli, "demo", "--data-dir", str(self.data_dir)], env=self.env, check=True, stdout=subprocess.DEVNULL
            )
        # the server's log goes to a file: a pipe nobody reads fills up (64 KB of warnings in a long
        # run) and then blocks the server mid-benchmark
        self.log_path = self.data_dir / "server.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            wait_healthy(self.url, ready=lambda: self.proc is not None and self.proc.poll() is None)
        except RuntimeError:
            self.stop()  # never leave a half-started server behind
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server did not start; the end of {self.log_path}:\n{tail}") from None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def percentiles(values: list[float], ps: tuple[float, ...] = (50, 90, 95, 99)) -> dict[str, float]:
    if not values:
        return {f"p{int(p)}": 0.0 for p in ps}
    ordered = sorted(values)
    out = {}
    for p in ps:
        k = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        out[f"p{int(p)}"] = round(ordered[k], 3)
    return out


def progress(done: float, total: float, label: str = "") -> None:
    width = 30
    frac = 0 if total <= 0 else min(1.0, done / total)
    bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
    sys.stderr.write(f"\r[{bar}] {frac * 100:5.1f}% {label}")
    sys.stderr.flush()
    if frac >= 1.0:
        sys.stderr.write("\n")
