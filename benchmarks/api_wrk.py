"""Hot reads under wrk: browse and detail as a signed-in learner, with the server's CPU per request.

Runs ``wrk`` (a load generator written in C, so the generator costs little)
with ``benchmarks/wrk/hot_reads.lua`` against a PeerLearn server, once per
mode, and reads the server's CPU time from /proc (every process of its tree,
so ``--workers`` counts whole) and wrk's own CPU time (this machine is shared:
what the generator cost is part of the figure). Prints JSON and draws a plot.

    python benchmarks/api_wrk.py --connections 20 --duration 15          # starts a server (SQLite, demo data)
    python benchmarks/api_wrk.py --url http://127.0.0.1:8080 --server-pid PID

The server it starts runs as ``peerlearn serve`` does by default (access log on, written to a file);
PEERLEARN_DATABASE_URL / PEERLEARN_REDIS_URL in the environment select PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import common
from benchmarks.common import command_line, free_port, machine, wait_healthy, write_report

LUA = Path(__file__).resolve().parent / "wrk" / "hot_reads.lua"
LEARNER = "liam.park@peerlearn.local"
PASSWORD = "peerlearn123"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a --workers supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def runqueue_seconds(pids: list[int]) -> float:
    """Seconds these processes' threads were runnable but waiting for a CPU (schedstat): how
    much other load on this shared machine delayed the server (as in sfu_load)."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return total / 1e9


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def sign_in(base: str) -> tuple[str, list[int]]:
    """A learner's access token and the ids of published sessions (for detail)."""
    token = str(_post_json(base + "/api/auth/login", {"email": LEARNER, "password": PASSWORD})["access_token"])
    with urllib.request.urlopen(base + "/api/sessions?page_size=100", timeout=30) as r:
        ids = [int(s["id"]) for s in json.loads(r.read())["items"]]
    return token, ids


def run_wrk(
    base: str, mode: str, *, threads: int, connections: int, duration: float, token: str, ids: list[int]
) -> dict[str, Any]:
    env = {**os.environ, "PEERLEARN_TOKEN": token, "PEERLEARN_SESSION_IDS": ",".join(map(str, ids))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(LUA),
            base,
            "--",
            mode,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("wrk_json: "))
    result: dict[str, Any] = json.loads(line[len("wrk_json: ") :])
    result["wrk_cpu_seconds"] = round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3)
    return result


class Server:
    """``peerlearn serve`` in a subprocess with demo data, logging as it does by default."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PEERLEARN_AUTH_RATE_LIMIT": "100000"}
        cli = [sys.executable, "-m", "api.cli"]
        subprocess.run([*cli, "demo", "--data-dir", str(self.data_dir)], env=env, check=True, stdout=subprocess.DEVNULL)
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - the server owns it until stop()
        cmd = [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_healthy(self.url)
        if self.workers > 1:  # every worker answers before we measure
            time.sleep(2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def measure(base: str, server_pid: int | None, modes: list[str], args: argparse.Namespace) -> dict[str, Any]:
    token, ids = sign_in(base)
    runs: dict[str, Any] = {}
    for mode in modes:
        if args.warmup > 0:
            run_wrk(
                base,
                mode,
                threads=args.threads,
                connections=args.connections,
                duration=args.warmup,
                token=token,
                ids=ids,
            )
        pids = process_tree(server_pid) if server_pid else []
        load_before = os.getloadavg()
        cpu0, wait0 = cpu_seconds(pids), runqueue_seconds(pids)
        result = run_wrk(
            base, mode, threads=args.threads, connections=args.connections, duration=args.duration, token=token, ids=ids
        )
        cpu, wait = cpu_seconds(pids) - cpu0, runqueue_seconds(pids) - wait0
        if pids:
            result["server_cpu_seconds"] = round(cpu, 3)
            result["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, result["requests"]), 4)
            result["server_cores"] = round(cpu / result["seconds"], 3)
            result["server_runqueue_wait_share"] = round(wait / result["seconds"], 3)
        result["wrk_cpu_ms_per_request"] = round(1000 * result["wrk_cpu_seconds"] / max(1, result["requests"]), 4)
        result["loadavg_before"] = load_before
        runs[mode] = result
    return runs


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["result"]
    modes = list(runs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    a.bar(modes, [runs[m]["rps"] for m in modes], color="#4f46e5")
    a.axhline(1000, color="red", linestyle="--", linewidth=1, label="target 1,000 req/s")
    a.set_ylabel("requests/s")
    a.legend()
    b.bar(modes, [runs[m]["latency_ms"]["p99"] for m in modes], color="#0891b2")
    b.axhline(50, color="red", linestyle="--", linewidth=1, label="target p99 50 ms")
    b.set_ylabel("p99 latency (ms)")
    b.legend()
    p = report["params"]
    fig.suptitle(
        f"wrk -t{p['threads']} -c{p['connections']} -d{p['duration']}s, {p['database']}, {p['workers']} process(es)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start one with demo data)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its CPU time")
    ap.add_argument("--modes", default="browse,detail", help="comma separated: browse, detail, mix")
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measured run")
    ap.add_argument("--workers", type=int, default=1, help="processes of the server this script starts")
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if args.out:
        common.RESULTS = Path(args.out)
    database = "postgresql" if os.environ.get("PEERLEARN_DATABASE_URL") else "sqlite"
    server = None
    if args.url:
        base, pid, database = args.url.rstrip("/"), args.server_pid, "external"
    else:
        server = Server(Path(tempfile.mkdtemp(prefix="pl-apiwrk-")), args.workers)
        server.start()
        base, pid = server.url, server.proc.pid if server.proc else None
    try:
        runs = measure(base, pid, [m.strip() for m in args.modes.split(",") if m.strip()], args)
    finally:
        if server:
            server.stop()
    report = {
        "benchmark": "api_wrk",
        "machine": machine(),
        "command": command_line(),
        "loadavg": os.getloadavg(),
        "params": {
            "connections": args.connections,
            "threads": args.threads,
            "duration": args.duration,
            "database": database,
            "workers": args.workers if server else None,
        },
        "result": runs,
    }
    path = write_report("api_wrk", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
