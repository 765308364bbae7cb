"""Realtime fan-out: N signed-in learners watch one busy class's seat count over ``/ws``.

The watchers are what a popular class has while seats go: learners with its page open
(``web/static/js/sessions_ui.js`` subscribes every session on screen), each signed in with
their own socket. Any signed-in user may follow a published session's channel, so every one
of them is allowed (``Hub.may_see_session``); the first ``--changes`` of them also book.

What it does:
1. seeds the database directly (no argon2 per user): ``peerlearn demo``, then N learners
   inserted in bulk with one precomputed password hash and a confirmed address, and one
   busy scheduled class of a demo mentor; access tokens are minted the way the app mints
   them (``api.security.issue_access_token`` with the server's JWT secret);
2. starts ``peerlearn serve`` (one process, or ``--workers 2`` with a private redis-server);
3. opens N ``/ws`` sockets from ``--procs`` client processes (aiohttp on uvloop) and
   subscribes each to the class's channel;
4. books ``--changes`` seats through ``POST /api/bookings/create``, one every
   ``--interval`` seconds, each by a different learner: every booking pushes a ``seats``
   message to every socket;
5. reports the delivery latency to every socket (booking request sent -> socket read it:
   p50/p99/max), messages lost, sockets closed, the server's CPU per delivered message and
   RSS per socket, the generator's own CPU, the load average. JSON + a plot.

    python benchmarks/realtime_fanout.py                       # 10,000 sockets, one process
    python benchmarks/realtime_fanout.py --workers 2           # two workers + private Redis
    python benchmarks/realtime_fanout.py --sockets 200 --changes 5 --interval 0.2   # a quick look

The file-descriptor limit is raised to its hard limit (``RLIMIT_NOFILE``; the server and the
client processes inherit it); the report says what it was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.api_wrk import cpu_seconds, process_tree, runqueue_seconds  # noqa: E402
from benchmarks.common import command_line, free_port, machine, percentiles, wait_healthy, write_report  # noqa: E402
from benchmarks.fanout_clients import run as run_clients  # noqa: E402

JWT_SECRET = "fanout-benchmark-" + "k" * 48
MENTOR = "ada.lovelace@peerlearn.local"
DELIVERY_TIMEOUT = 60.0
BOOKING_TIMEOUT = 30.0


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def raise_fd_limit() -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return {"soft_before": soft, "now": hard}


# ---------------------------------------------------------------------------------------- seeding
async def _seed(data_dir: Path, sockets: int, capacity: int) -> tuple[list[tuple[int, str]], int]:
    """N learners (bulk insert, one hash), one busy class; returns [(user_id, token)], session id."""
    from sqlalchemy import insert, select

    from api.db import Database
    from api.models import Role, Session, SessionStatus, User
    from api.security import hash_password, issue_access_token
    from api.settings import Settings

    settings = Settings.from_env(data_dir=str(data_dir))
    db = Database(settings.effective_database_url)
    now = datetime.now(timezone.utc)
    pw = hash_password("fanout-benchmark")  # once: every seeded learner shares it
    try:
        async with db.write() as s:
            mentor_id = await s.scalar(select(User.id).where(User.email == MENTOR))
            assert mentor_id is not None, "demo data missing"
            rows = [
                {
                    "email": f"watcher{i}@fanout.local",
                    "password_hash": pw,
                    "full_name": f"Watcher {i}",
                    "role": Role.learner,
                    "email_verified_at": now,
                }
                for i in range(sockets)
            ]
            for start in range(0, len(rows), 2000):
                await s.execute(insert(User), rows[start : start + 2000])
            ids = list(
                (await s.scalars(select(User.id).where(User.email.like("watcher%@fanout.local")).order_by(User.id)))
            )
            busy = Session(
                mentor_id=mentor_id,
                title="Busy class: realtime fan-out benchmark",
                domain="Programming",
                capacity=capacity,
                price_cents=1500,
                starts_at=now + timedelta(days=2),
                duration_min=60,
                status=SessionStatus.scheduled,
            )
            s.add(busy)
            await s.flush()
            session_id = busy.id
    finally:
        await db.dispose()
    tokens = [
        (uid, issue_access_token(JWT_SECRET, user_id=uid, role="learner", version=0, ttl_seconds=6 * 3600)[0])
        for uid in ids
    ]
    return tokens, session_id


async def _seat_changes(
    data_dir: Path, session_id: int, capacity: int, asked: dict[int, float]
) -> list[tuple[int, float]]:
    """[(seats_left, when the booking that made it was sent)], from the bookings as committed:
    exact even when a booking answered late (timed out here) and committed after the next one."""
    from sqlalchemy import select

    from api.db import Database
    from api.models import Booking
    from api.settings import Settings

    db = Database(Settings.from_env(data_dir=str(data_dir)).effective_database_url)
    try:
        async with db.read() as s:
            learners = list(
                await s.scalars(select(Booking.learner_id).where(Booking.session_id == session_id).order_by(Booking.id))
            )
    finally:
        await db.dispose()
    return [(capacity - k - 1, asked[uid]) for k, uid in enumerate(learners) if uid in asked]


# ---------------------------------------------------------------------------------------- server
class Server:
    """``peerlearn serve`` (``--workers N`` with a private redis-server when N > 1), logging to a file."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.data_dir, self.workers = data_dir, workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.redis: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "PEERLEARN_JWT_SECRET": JWT_SECRET,
            "PEERLEARN_ACCESS_LOG": "false",
            "PEERLEARN_LOG_LEVEL": "WARNING",
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def demo(self) -> None:
        cmd = [sys.executable, "-m", "api.cli", "demo", "--data-dir", str(self.data_dir)]
        subprocess.run(cmd, env=self.env, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.workers > 1:
            rport = free_port()
            redis = shutil.which("redis-server")
            if redis is None:
                raise SystemExit("error: --workers > 1 needs redis-server (apt-get install redis-server)")
            self.redis = subprocess.Popen(
                [redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.env["PEERLEARN_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
            cmd += ["--workers", str(self.workers)]
        log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 - the server owns it
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc
        wait_healthy(
            self.url, timeout=300, ready=lambda: len(process_tree(proc.pid)) > self.workers or self.workers == 1
        )
        if self.workers > 1:
            time.sleep(2)  # every worker listening and its broker confirmed

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)


def book(base: str, token: str, session_id: int) -> str:
    """One booking through the API: its HTTP status, or "timeout" after BOOKING_TIMEOUT."""
    req = urllib.request.Request(
        base + "/api/bookings/create",
        data=json.dumps({"session_id": session_id}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=BOOKING_TIMEOUT) as r:
            return str(r.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (TimeoutError, OSError) as exc:
        return "timeout" if "timed out" in str(exc) else type(exc).__name__


def start_py_spy(out: str, pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """Sample the server (one worker with --workers) through the seat changes (py-spy, raw stacks)."""
    exe = Path(sys.executable).parent / "py-spy"
    seconds = max(1, round(args.changes * args.interval + 5))
    cmd = [str(exe), "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw", "--output", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------- the run
class Clients:
    """The client processes and their pipes."""

    def __init__(self, url: str, tokens: list[str], session_id: int, procs: int, in_flight: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for i in range(procs):
            mine, theirs = ctx.Pipe()
            share = tokens[i::procs]
            p = ctx.Process(target=run_clients, args=(theirs, url, share, session_id, in_flight), daemon=True)
            p.start()
            self.pipes.append(mine)
            self.procs.append(p)
        self.progress = [0] * procs

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        out: dict[str, Any] = {"connected": 0, "failures": {}}
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError("a client process never finished connecting")
            kind, info = pipe.recv()
            if kind == "error":
                raise RuntimeError(f"a client process failed:\n{info}")
            out["connected"] += info["connected"]
            for k, v in info["failures"].items():
                out["failures"][k] = out["failures"].get(k, 0) + v
        return out

    def received(self) -> int:
        for i, pipe in enumerate(self.pipes):
            while pipe.poll():
                kind, n = pipe.recv()
                if kind == "progress":
                    self.progress[i] = n
                elif kind == "error":
                    raise RuntimeError(f"a client process failed:\n{n}")
        return sum(self.progress)

    def finish(self, changes: list[tuple[int, float]]) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(("finish", changes))
        results = []
        for pipe in self.pipes:
            while True:
                kind, payload = pipe.recv()
                if kind == "error":
                    raise RuntimeError(f"a client process failed:\n{payload}")
                if kind == "result":
                    results.append(payload)
                    break
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
        return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import array

    fd_limit = raise_fd_limit()
    data_dir = Path(tempfile.mkdtemp(prefix="pl-fanout-"))
    server = Server(data_dir, args.workers)
    server.demo()
    capacity = args.changes + 50
    tokens, session_id = asyncio.run(_seed(data_dir, args.sockets, capacity))
    clients: Clients | None = None
    try:
        server.start()
        pids = server.pids()
        time.sleep(1)
        rss0, cpu0 = rss_bytes(pids), cpu_seconds(pids)
        t_connect = time.monotonic()
        clients = Clients(server.url, [t for _, t in tokens], session_id, args.procs, args.in_flight)
        ready = clients.wait_ready(timeout=max(120.0, args.sockets / 20))
        connect_s = time.monotonic() - t_connect
        time.sleep(2)  # let the handshakes' garbage settle before reading memory
        pids = server.pids()
        rss1, cpu1 = rss_bytes(pids), cpu_seconds(pids)
        gen_cpu0 = cpu_seconds(clients.pids())
        wait0 = runqueue_seconds(pids)
        load_before = os.getloadavg()
        statuses: dict[str, int] = {}
        booking_ms: list[float] = []
        asked: dict[int, float] = {}  # learner -> when their booking was sent
        spy = start_py_spy(args.py_spy, pids[-1], args) if args.py_spy else None
        t_burst = time.monotonic()
        for i in range(args.changes):
            due = t_burst + i * args.interval
            if (pause := due - time.monotonic()) > 0:
                time.sleep(pause)
            uid, token = tokens[i]
            t0 = time.monotonic()
            status = book(server.url, token, session_id)
            booking_ms.append(1000 * (time.monotonic() - t0))
            statuses[status] = statuses.get(status, 0) + 1
            asked[uid] = t0
            clients.received()
        time.sleep(1)  # a booking that timed out on our side may still commit
        changes = asyncio.run(_seat_changes(data_dir, session_id, capacity, asked))
        expected = len(changes) * ready["connected"]
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while clients.received() < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        burst_s = time.monotonic() - t_burst
        cpu2, gen_cpu1, wait1 = cpu_seconds(pids), cpu_seconds(clients.pids()), runqueue_seconds(pids)
        rss2 = rss_bytes(pids)
        if spy is not None:
            spy.wait()
        load_after = os.getloadavg()
        results = clients.finish(changes)
        clients = None
    finally:
        if clients is not None:
            for p in clients.procs:
                p.terminate()
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    latencies = array.array("d")
    for r in results:
        latencies.frombytes(r["latencies"])
    ms = [x * 1000 for x in latencies]
    closed: dict[str, int] = {}
    for r in results:
        for k, v in r["closed"].items():
            closed[k] = closed.get(k, 0) + v
    delivered = len(ms)
    held = ready["connected"]
    return {
        "sockets_asked": args.sockets,
        "sockets_held": held,
        "connect_failures": ready["failures"],
        "connect_seconds": round(connect_s, 2),
        "server_cpu_ms_per_connect": round(1000 * (cpu1 - cpu0) / max(1, held), 3),
        "changes": len(changes),
        "booking_statuses": statuses,
        "booking_ms": {**percentiles(booking_ms, (50, 99)), "max": round(max(booking_ms), 1) if booking_ms else None},
        "messages_expected": expected,
        "messages_delivered": delivered,
        "messages_lost": sum(r["lost"] for r in results),
        "sockets_closed": closed,
        "latency_ms": {**percentiles(ms, (50, 90, 99)), "max": round(max(ms), 3) if ms else None},
        "burst_seconds": round(burst_s, 2),
        "server_cpu_seconds_burst": round(cpu2 - cpu1, 3),
        "server_cpu_us_per_delivered_message": round(1e6 * (cpu2 - cpu1) / max(1, delivered), 2),
        "server_runqueue_wait_share_burst": round((wait1 - wait0) / max(1e-9, burst_s), 3),
        "generator_cpu_seconds_burst": round(gen_cpu1 - gen_cpu0, 3),
        "generator_cpu_us_per_delivered_message": round(1e6 * (gen_cpu1 - gen_cpu0) / max(1, delivered), 2),
        "server_rss_mb": {
            "before": round(rss0 / 2**20, 1),
            "holding": round(rss1 / 2**20, 1),
            "after_burst": round(rss2 / 2**20, 1),
        },
        "server_kb_per_socket": round((rss1 - rss0) / 1024 / max(1, held), 2),
        "server_kb_per_socket_after_burst": round((rss2 - rss0) / 1024 / max(1, held), 2),
        "server_processes": len(pids),
        "loadavg_before_burst": load_before,
        "loadavg_after_burst": load_after,
        "fd_limit": fd_limit,
        "_latencies_ms": ms,
    }


def plot(report: dict[str, Any], ms: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, p = report["result"], report["params"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    if ms:
        ordered = sorted(ms)
        n = len(ordered)
        step = max(1, n // 2000)
        xs = ordered[::step] + [ordered[-1]]
        ys = [i / n for i in range(0, n, step)] + [1.0]
        a.plot(xs, ys, color="#4f46e5")
    a.axvline(1000, color="red", linestyle="--", linewidth=1, label="target p99 1 s")
    a.set_xscale("log")
    a.set_xlabel("booking sent -> socket read the seat count (ms)")
    a.set_ylabel("share of deliveries")
    lat = r["latency_ms"]
    a.set_title(
        f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max'] or 0:.0f} ms, lost {r['messages_lost']}",
        fontsize=9,
    )
    a.legend(loc="lower right")
    b.bar(
        ["holding", "after burst"], [r["server_kb_per_socket"], r["server_kb_per_socket_after_burst"]], color="#0891b2"
    )
    b.axhline(50, color="red", linestyle="--", linewidth=1, label="target 50 KB")
    b.set_ylabel("server RSS per socket (KB)")
    b.legend()
    fig.suptitle(
        f"{r['sockets_held']:,} /ws sockets, {r['changes']} seat changes every {p['interval']} s, "
        f"{p['workers']} server process(es), loadavg {r['loadavg_before_burst'][0]:.1f}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--changes", type=int, default=100, help="seat changes (bookings), each by another learner")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between seat changes")
    ap.add_argument("--workers", type=int, default=1, help="server processes (> 1: with a private redis-server)")
    ap.add_argument("--procs", type=int, default=4, help="client processes holding the sockets")
    ap.add_argument("--in-flight", type=int, default=50, help="handshakes in flight per client process")
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--figure", help="also save the plot here (e.g. benchmarks/figures/realtime_fanout-1proc.png)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--py-spy", metavar="FILE", help="profile the server through the seat changes (raw stacks)")
    args = ap.parse_args()
    if args.changes >= args.sockets:
        ap.error("--changes must be below --sockets (each change is booked by one of the watchers)")
    if args.out:
        common.RESULTS = Path(args.out)
    load_start = os.getloadavg()
    result = measure(args)
    ms = result.pop("_latencies_ms")
    report = {
        "benchmark": "realtime_fanout",
        "machine": machine(),
        "command": command_line(),
        "loadavg": load_start,
        "params": {
            "sockets": args.sockets,
            "changes": args.changes,
            "interval": args.interval,
            "workers": args.workers,
            "client_processes": args.procs,
            "database": "postgresql" if os.environ.get("PEERLEARN_DATABASE_URL") else "sqlite",
        },
        "result": result,
    }
    path = write_report("realtime_fanout", report)
    if not args.no_plot:
        plot(report, ms, path.with_suffix(".png"))
        if args.figure:
            plot(report, ms, Path(args.figure))
    print(json.dumps(report, indent=2))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
