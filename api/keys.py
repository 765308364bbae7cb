"""Typed application keys: the one place app state is declared (no module globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from api.broker import MemoryBroker
    from api.db import Database
    from api.mailer import Mailer
    from api.ratelimit import RateLimiter
    from api.settings import Settings

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings", object)  # type: ignore[arg-type]
DB: web.AppKey["Database"] = web.AppKey("db", object)  # type: ignore[arg-type]
BROKER: web.AppKey["MemoryBroker"] = web.AppKey("broker", object)  # type: ignore[arg-type]
MAILER: web.AppKey["Mailer"] = web.AppKey("mailer", object)  # type: ignore[arg-type]
LIMITER: web.AppKey["RateLimiter"] = web.AppKey("limiter", object)  # type: ignore[arg-type]
ENDPOINTS: web.AppKey[list[Any]] = web.AppKey("endpoints", list)
# Extra services registered by later modules (hub, rooms, scheduler, recommender ...).
SERVICES: web.AppKey[dict[str, Any]] = web.AppKey("services", dict)
