"""No HTTP routes: this module plugs the background scheduler into the app (see api/services/scheduler.py)."""

from __future__ import annotations

from aiohttp import web

from api.routing import ApiRoutes
from api.services import scheduler

routes = ApiRoutes("scheduler")


def setup(app: web.Application) -> None:
    scheduler.setup(app)
