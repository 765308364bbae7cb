"""create_app(settings): wiring only, the application's table of contents (config,
middlewares, resources in start order, routes, plugins).

The page layer plugs in through ``plugins`` ("module:function" names called
with the app), so ``api`` never imports ``web``: web depends on api, not back.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from api import headers, lifecycle, proxy
from api.auth import csrf_middleware
from api.errors import error_middleware
from api.keys import ENDPOINTS, INTERNAL_ADDRESS, MAILER, METRICS, SETTINGS
from api.mailer import Mailer
from api.metrics import Metrics, metrics_middleware
from api.placement import InternalAddress
from api.proxy import proxy_middleware
from api.owner_forward import peer_client_middleware
from api.routes import ROUTES
from api.settings import Settings
from api.supervisor import WorkerHealthCollector

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = ("web.pages:setup",)


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


def create_app(settings: Settings, *, plugins: Sequence[str] = DEFAULT_PLUGINS) -> web.Application:
    """Build the whole application for ``settings``."""
    settings = settings.prepared()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # proxy_middleware first: everything after it sees the real client IP and scheme.
        # metrics_middleware outside error_middleware: it counts the response the client got
        # (a domain refusal as its 400/401/403/404/409, an unhandled error as the 500 it became),
        # not the exception on its way out, which it could only guess at.
        middlewares=[proxy_middleware, peer_client_middleware, metrics_middleware, error_middleware, csrf_middleware],
    )
    # Configuration, and what every request reaches through app state.
    app[SETTINGS] = settings
    proxy.setup(app)
    headers.setup(app)
    app[ENDPOINTS] = []
    app[METRICS] = Metrics()
    if settings.workers > 1:  # under `serve --workers N`: its parent's view of the workers
        app[METRICS].registry.register(WorkerHealthCollector(settings.data_dir))
    app[MAILER] = Mailer(outbox=settings.outbox_dir, sender=settings.mail_from, smtp_url=settings.smtp_url)
    app[INTERNAL_ADDRESS] = InternalAddress()
    # Long-lived resources, in start order; they stop in reverse (api/lifecycle.py). The
    # database comes first (the broker attaches its read caches); live rooms come before
    # placement (it reports their load) and the recording manager (it listens to new rooms).
    app.cleanup_ctx.extend(
        [
            lifecycle.database,
            lifecycle.broker,
            lifecycle.realtime_hub,
            lifecycle.scheduler,
            lifecycle.mail_sender,
            lifecycle.recommender,
            lifecycle.live_rooms,
            lifecycle.placement,
            lifecycle.recording_manager,
        ]
    )
    # Open WebSockets close first on shutdown (aiohttp waits for their handlers).
    app.on_shutdown.extend([lifecycle.close_realtime_sockets, lifecycle.close_room_sockets])
    # Routes: one table per resource (api/routes/), the uploaded avatars, then the pages.
    for table in ROUTES:
        table.register(app)
    avatars = settings.uploads_dir / "avatars"
    avatars.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/media/avatars", avatars, name="avatars")
    for plugin in plugins:
        _resolve(plugin)(app)
    return app
