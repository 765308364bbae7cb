"""create_app(settings): wiring only (config, resources, middlewares, routes, plugins).

The page layer plugs in through ``plugins`` ("module:function" names called
with the app), so ``api`` never imports ``web``: web depends on api, not back.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import web

from api import headers, proxy
from api.auth import csrf_middleware
from api.broker import MemoryBroker, RedisBroker
from api.db import Database
from api.errors import error_middleware
from api.keys import BROKER, DB, ENDPOINTS, LIMITER, MAILER, SERVICES, SETTINGS
from api.mailer import Mailer
from api.metrics import METRICS, Metrics, metrics_middleware
from api.migrate import upgrade_async
from api.proxy import proxy_middleware
from api.ratelimit import MemoryRateLimiter, RedisRateLimiter
from api.routes import ROUTE_MODULES
from api.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = ("web.pages:setup",)


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.extra.get("migrate", True):
        await upgrade_async(settings.effective_database_url)
    app[DB] = Database(settings.effective_database_url)
    yield
    await app[DB].dispose()


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.redis_url:
        broker = RedisBroker(settings.redis_url)
        await broker.start()
        app[BROKER] = broker
        app[LIMITER] = RedisRateLimiter(broker.redis)
    else:
        app[BROKER] = MemoryBroker()
        app[LIMITER] = MemoryRateLimiter()
    # Other processes' writes invalidate this one's read caches through the broker.
    await app[DB].caches.attach(app[BROKER])
    yield
    await app[DB].caches.detach()
    await app[BROKER].close()


def create_app(settings: Settings, *, plugins: Sequence[str] = DEFAULT_PLUGINS) -> web.Application:
    """Build the whole application for ``settings``."""
    settings = settings.prepared()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # proxy_middleware first: everything after it sees the real client IP and scheme.
        middlewares=[proxy_middleware, error_middleware, metrics_middleware, csrf_middleware],
    )
    app[SETTINGS] = settings
    proxy.setup(app)
    headers.setup(app)
    app[ENDPOINTS] = []
    app[SERVICES] = {}
    app[METRICS] = Metrics()
    app[MAILER] = Mailer(outbox=settings.outbox_dir, sender=settings.mail_from, smtp_url=settings.smtp_url)
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_broker_ctx)
    for module in ROUTE_MODULES:
        mod = importlib.import_module(module)
        mod.routes.register(app)
        setup = getattr(mod, "setup", None)
        if setup is not None:
            setup(app)
    avatars = settings.uploads_dir / "avatars"
    avatars.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/media/avatars", avatars, name="avatars")
    for plugin in plugins:
        _resolve(plugin)(app)
    return app
