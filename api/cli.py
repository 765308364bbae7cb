"""The ``peerlearn`` command: serve, migrate, demo, create-admin (``--help`` on each)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path
from typing import Any

from api.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    settings = Settings.from_env(**overrides)
    if getattr(args, "port", None) and "PEERLEARN_PUBLIC_URL" not in __import__("os").environ:
        from dataclasses import replace

        host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
        settings = replace(settings, public_url=f"http://{host}:{settings.port}")
    return settings.prepared()


def cmd_serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from api.app import create_app

    settings = _settings(args)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = args.workers or 1
    if workers > 1:
        return _serve_workers(args, settings, workers)
    if args.no_migrate:
        settings = replace(settings, migrate=False)
    app = create_app(settings)
    run_event_loop(_run_server(app, settings, reuse_port=args.reuse_port), settings.event_loop)
    return 0


def _settle_gc() -> None:
    """Keep the start-up heap out of the collector's way: everything allocated so far
    (modules, the app, SQLAlchemy and pydantic machinery, some 130k objects) moves to the
    permanent generation, so full collections under load scan only what requests and
    caches keep (a full pass over the start-up heap took ~100-190 ms: the p99)."""
    gc.collect()
    gc.freeze()


def run_event_loop(main: Any, kind: str = "uvloop") -> Any:
    """Run ``main`` on uvloop (libuv: cheaper I/O and callbacks per request) when it is
    installed and wanted, else on asyncio's own loop."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            logging.getLogger(__name__).info("uvloop is not installed: using asyncio's event loop")
        else:
            return uvloop.run(main)
    return asyncio.run(main)


async def _run_server(app: Any, settings: Settings, *, reuse_port: bool) -> None:
    """Serve until SIGINT/SIGTERM. With Redis, also listen on an internal address
    other processes use to reach the rooms this one owns."""
    import signal
    import socket

    from aiohttp import web

    from api import access_log_batch
    from api.keys import INTERNAL_ADDRESS, PLACEMENT

    # Tokens in URLs (?token= of non-browser WebSocket clients) never reach the log; lines
    # are written in batches (per-request logging records cost a quarter of a hot read).
    access, access_buffer = access_log_batch.runner_options(settings.access_log)
    runner = web.AppRunner(app, **access, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port).start()
    _settle_gc()
    if settings.redis_url:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.internal_host, 0))
        await web.SockSite(runner, sock).start()
        app[INTERNAL_ADDRESS].url = f"http://{settings.internal_host}:{sock.getsockname()[1]}"
        await app[PLACEMENT].beat_now()  # register at once: other processes may route rooms here
    print(f"PeerLearn serving on http://{settings.host}:{settings.port} (data in {settings.data_dir})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from api import memtrace

    # after start-up: under tracemalloc the migrations crawl (minutes), and growth under load is what it is for
    tracers = [
        asyncio.ensure_future(memtrace.dump_periodically(Path(settings.data_dir))),
        asyncio.ensure_future(memtrace.memstats_periodically(Path(settings.data_dir))),
    ]
    try:
        await stop.wait()
    finally:
        # a worker must end within the supervisor's grace whatever hangs in its shutdown (a
        # Redis or database that is gone, a task that will not cancel, an executor thread):
        # orphaned ``--reuse-port`` workers that ignored SIGTERM were found after CI runs
        _exit_after(EXIT_DEADLINE)
        for tracer in tracers:
            tracer.cancel()
        try:
            await asyncio.wait_for(runner.cleanup(), CLEANUP_SECONDS)
        except asyncio.TimeoutError:
            logging.getLogger(__name__).warning("shutdown: cleanup outlasted %.0f s; exiting anyway", CLEANUP_SECONDS)
        if access_buffer is not None:
            access_buffer.flush()


#: seconds the server's cleanup (open handlers, rooms, Redis, the database) may take after a stop
CLEANUP_SECONDS = 15.0
#: and the whole process, event-loop teardown included (below the supervisor's 30 s grace)
EXIT_DEADLINE = 25.0


def _exit_after(seconds: float) -> None:
    """Leave the process ``seconds`` from now if it has not ended by itself by then."""
    import os
    import threading

    def hard_exit() -> None:
        print(f"PeerLearn: still shutting down {seconds:.0f} s after the stop signal; exiting", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


def _serve_workers(args: argparse.Namespace, settings: Settings, workers: int) -> int:
    """N processes sharing the port (SO_REUSEPORT); rooms and fan-out placed through Redis."""
    import os
    import signal
    import subprocess

    from api.migrate import upgrade

    if not settings.redis_url:
        print(
            "error: --workers > 1 needs PEERLEARN_REDIS_URL (realtime fan-out and room placement "
            "cross processes through Redis)",
            file=sys.stderr,
        )
        return 2
    upgrade(settings.effective_database_url)  # once, before any worker starts
    from api.broker import announce_dead
    from api.placement import forget_process
    from api.supervisor import Supervisor

    cmd = [sys.executable, "-m", "api.cli", "serve", "--host", settings.host, "--port", str(settings.port)]
    cmd += ["--data-dir", str(settings.data_dir), "--no-migrate", "--reuse-port"]

    def spawn(index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PEERLEARN_WORKER_INDEX": str(index), "PEERLEARN_WORKERS": str(workers)}
        return subprocess.Popen(cmd, env=env)

    import redis

    timeout = settings.redis_timeout_seconds
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def forget(pid: int) -> None:
        announce_dead(client, pid)
        released = forget_process(client, pid)
        logging.getLogger(__name__).warning("placement: %d room(s) of pid %d released", released, pid)

    supervisor = Supervisor(spawn, workers, settings.data_dir, on_death=forget)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    supervisor.start()
    print(f"PeerLearn serving on http://{settings.host}:{settings.port} with {workers} workers", flush=True)
    return supervisor.run()


def cmd_migrate(args: argparse.Namespace) -> int:
    from api.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.effective_database_url)
    print("Database is at the latest schema.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from api.demo import load_demo

    settings = _settings(args)
    summary = asyncio.run(load_demo(settings))
    print(summary)
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from api.db import Database
    from api.errors import ApiError
    from api.migrate import upgrade
    from api.services.accounts import create_admin
    from api.services.errors import DomainError

    settings = _settings(args)
    upgrade(settings.effective_database_url)

    async def run() -> None:
        db = Database(settings.effective_database_url)
        try:
            user = await create_admin(db, args.email, args.password, args.name)
            print(f"Admin ready: {user.email} (id {user.id})")
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except (ApiError, DomainError) as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def cmd_recordings_export(args: argparse.Namespace) -> int:
    from api.cli_recordings import export_recording

    return asyncio.run(export_recording(_settings(args), args.id))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peerlearn", description="PeerLearn live mentoring platform")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="data directory (SQLite, uploads, recordings, outbox, dev secrets); "
            "env PEERLEARN_DATA_DIR, default ./data",
        )

    serve = sub.add_parser("serve", help="run the web server (migrates on start)")
    serve.add_argument("--host", default=None, help="bind address; env PEERLEARN_HOST, default 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="TCP port; env PEERLEARN_PORT, default 8080")
    serve.add_argument(
        "--workers", type=int, default=None, help="processes sharing the port (one per core); needs PEERLEARN_REDIS_URL"
    )
    serve.add_argument("--no-migrate", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    common(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    common(migrate)
    migrate.set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="load idempotent demo data and print the demo logins")
    common(demo)
    demo.set_defaults(func=cmd_demo)

    admin = sub.add_parser("create-admin", help="create (or promote) an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--name", default="Administrator")
    common(admin)
    admin.set_defaults(func=cmd_create_admin)

    recs = sub.add_parser("recordings", help="recordings: composite export")
    recs_sub = recs.add_subparsers(dest="recordings_command", required=True)
    export = recs_sub.add_parser("export", help="make the grid MP4 of a recording, with a progress bar")
    export.add_argument("id", type=int, help="recording id")
    common(export)
    export.set_defaults(func=cmd_recordings_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
