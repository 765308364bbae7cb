"""API load test: virtual users doing a realistic mix against a PeerLearn server.

Each virtual user signs in as a demo learner, keeps a realtime socket open and
loops over: browse with filters, open a session's detail, read notifications,
and sometimes book a seat (409 sold_out / already_booked are normal answers).
Prints JSON (throughput, latency percentiles per operation, errors) and draws a
plot. SQLite by default (a server it starts itself); PostgreSQL when
PEERLEARN_DATABASE_URL is set; or any running server with --url.

    python benchmarks/api_load.py --concurrency 200 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.api_wrk import cpu_seconds, process_tree, runqueue_seconds
from benchmarks.common import (
    LocalServer,
    command_line,
    machine,
    percentiles,
    progress,
    write_report,
)

DOMAINS = ["Programming", "Data Science", "Design", "Languages", "Business"]
LEARNERS = [
    n.lower().replace(" ", ".") + "@peerlearn.local"
    for n in (
        "Liam Park",
        "Olivia Chen",
        "Noah Silva",
        "Emma Rossi",
        "Ava Novak",
        "Lucas Meyer",
        "Mia Kim",
        "Ethan Haddad",
        "Sofia Costa",
        "Mason Wright",
        "Isla Brown",
        "Leo Garcia",
        "Zoe Martin",
        "Kai Tanaka",
        "Nora Jensen",
        "Omar Aziz",
        "Lena Weber",
        "Ivan Petrov",
        "Ana Lima",
        "Sam Okafor",
    )
]
MIX = [("browse", 45), ("detail", 30), ("notifications", 15), ("book", 10)]


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.errors = 0
        self.ws_messages = 0

    def reset(self) -> None:
        """Forget the warm-up: only what follows is measured."""
        self.latency.clear()
        self.status.clear()
        self.errors = 0
        self.ws_messages = 0

    def record(self, op: str, seconds: float, status: int) -> None:
        self.latency[op].append(seconds * 1000)
        self.status[op][status] += 1


async def sign_in(http: aiohttp.ClientSession, base: str, email: str) -> str:
    async with http.post(base + "/api/auth/login", json={"email": email, "password": "peerlearn123"}) as r:
        if r.status != 200:
            raise RuntimeError(f"login {email}: {r.status} {await r.text()}")
        return str((await r.json())["access_token"])


async def user_loop(
    i: int,
    base: str,
    token: str,
    session_ids: list[int],
    stats: Stats,
    stop_at: float,
    rng: random.Random,
    think: float,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    ops = [op for op, w in MIX for _ in range(w)]
    async with aiohttp.ClientSession(headers=headers) as http:
        ws = await http.ws_connect(base.replace("http", "ws", 1) + f"/ws?token={token}")

        async def drain() -> None:
            async for _msg in ws:
                stats.ws_messages += 1

        reader = asyncio.ensure_future(drain())
        try:
            while time.monotonic() < stop_at:
                if think > 0:  # a person reads the page before the next click
                    await asyncio.sleep(rng.expovariate(1 / think))
                    if time.monotonic() >= stop_at:
                        break
                op = rng.choice(ops)
                if op == "browse":
                    params: dict[str, Any] = {"page_size": 20}
                    if rng.random() < 0.6:
                        params["domain"] = rng.choice(DOMAINS)
                    if rng.random() < 0.3:
                        params["max_price"] = rng.choice([2000, 4000, 10000])
                    if rng.random() < 0.2:
                        params["q"] = rng.choice(["python", "design", "sql", "french"])
                    req = http.get(base + "/api/sessions", params=params)
                elif op == "detail":
                    req = http.get(base + f"/api/sessions/{rng.choice(session_ids)}")
                elif op == "notifications":
                    req = http.get(base + "/api/notifications")
                else:
                    req = http.post(base + "/api/bookings/create", json={"session_id": rng.choice(session_ids)})
                start = time.perf_counter()
                try:
                    async with req as resp:
                        await resp.read()
                        stats.record(op, time.perf_counter() - start, resp.status)
                except aiohttp.ClientError:
                    stats.errors += 1
        finally:
            reader.cancel()
            await ws.close()


async def run(
    base: str,
    concurrency: int,
    duration: float,
    seed: int,
    think: float = 0.0,
    server_pid: int | None = None,
    warmup: float = 0.0,
) -> dict[str, Any]:
    rng = random.Random(seed)
    async with aiohttp.ClientSession() as http:
        tokens = [await sign_in(http, base, email) for email in LEARNERS]
        async with http.get(base + "/api/sessions", params={"page_size": 100}) as r:
            session_ids = [s["id"] for s in (await r.json())["items"]]
    stats = Stats()
    server_pids = process_tree(server_pid) if server_pid else []
    server_cpu0, own_cpu0, wait0 = cpu_seconds(server_pids), time.process_time(), runqueue_seconds(server_pids)
    start = time.monotonic()
    stop_at = start + warmup + duration
    users = [
        asyncio.ensure_future(
            user_loop(i, base, tokens[i % len(tokens)], session_ids, stats, stop_at, random.Random(rng.random()), think)
        )
        for i in range(concurrency)
    ]
    warming = warmup > 0
    while not all(u.done() for u in users):
        if warming and time.monotonic() >= start + warmup:  # the same users go on, now measured
            warming = False
            stats.reset()
            server_cpu0, own_cpu0 = cpu_seconds(server_pids), time.process_time()
            wait0 = runqueue_seconds(server_pids)
            start = time.monotonic()
        progress(time.monotonic() - start, duration, f"{sum(len(v) for v in stats.latency.values())} requests")
        await asyncio.sleep(0.5)
    progress(duration, duration)
    for u in users:
        if u.exception():
            raise u.exception()  # type: ignore[misc]
    elapsed = time.monotonic() - start
    server_cpu, own_cpu = cpu_seconds(server_pids) - server_cpu0, time.process_time() - own_cpu0
    wait = runqueue_seconds(server_pids) - wait0
    total = sum(len(v) for v in stats.latency.values())
    all_lat = [x for v in stats.latency.values() for x in v]
    five_xx = sum(n for codes in stats.status.values() for code, n in codes.items() if code >= 500)
    return {
        "requests": total,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(total / elapsed, 1),
        "latency_ms": percentiles(all_lat),
        "errors": stats.errors,
        "http_5xx": five_xx,
        "ws_messages": stats.ws_messages,
        # Both sides share this machine: what each cost, per request (server: its whole process tree).
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, total), 3) if server_pids else None,
        "server_cores": round(server_cpu / elapsed, 3) if server_pids else None,
        "server_runqueue_wait_share": round(wait / elapsed, 3) if server_pids else None,
        "generator_cpu_ms_per_request": round(1000 * own_cpu / max(1, total), 3),
        "generator_cores": round(own_cpu / elapsed, 3),
        "by_operation": {
            op: {"count": len(v), "latency_ms": percentiles(v), "status": dict(stats.status[op])}
            for op, v in stats.latency.items()
        },
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(report["result"]["by_operation"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = range(len(ops))
    for k, p in enumerate(("p50", "p95", "p99")):
        ax.bar(
            [x + k * 0.27 for x in xs],
            [report["result"]["by_operation"][o]["latency_ms"][p] for o in ops],
            width=0.27,
            label=p,
        )
    ax.axhline(50, color="red", linestyle="--", linewidth=1, label="p99 target 50 ms")
    ax.set_xticks([x + 0.27 for x in xs], ops)
    ax.set_ylabel("latency (ms)")
    r = report["result"]
    ax.set_title(
        f"API mix, {report['params']['concurrency']} clients, {r['throughput_rps']} req/s "
        f"({report['params']['database']})"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (default: start one with demo data)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its CPU time")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="seconds the users run before the measured window (caches fill, the server's "
        "first recommender training ends)",
    )
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a user waits between requests (0 = closed loop, as fast as answered)",
    )
    args = ap.parse_args()
    server = None
    import os

    database = "postgresql" if os.environ.get("PEERLEARN_DATABASE_URL") else "sqlite"
    if args.url:
        base = args.url.rstrip("/")
        database = "external"
    else:
        server = LocalServer(Path(tempfile.mkdtemp(prefix="pl-apiload-")))
        server.start()
        base = server.url
    try:
        pid = args.server_pid if args.url else (server.proc.pid if server and server.proc else None)
        result = asyncio.run(run(base, args.concurrency, args.duration, args.seed, args.think, pid, args.warmup))
    finally:
        if server:
            server.stop()
    report = {
        "benchmark": "api_load",
        "machine": machine(),
        "command": command_line(),
        "params": {
            "concurrency": args.concurrency,
            "duration": args.duration,
            "database": database,
            "think_seconds": args.think,
            "warmup_seconds": args.warmup,
        },
        "result": result,
    }
    path = write_report("api_load", report)
    plot(report, path.with_suffix(".png"))
    import json

    print(json.dumps(report, indent=2))
    print(f"report: {path}  plot: {path.with_suffix('.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
