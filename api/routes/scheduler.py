"""No HTTP routes: this module plugs the background loops into the app: the scheduler
(see api/services/scheduler.py) and the e-mail sender (see api/mailer.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.keys import DB, MAILER, SERVICES
from api.mailer import mail_sender_ctx
from api.routing import ApiRoutes
from api.services import scheduler

routes = ApiRoutes("scheduler")


async def _mail_sender(app: web.Application) -> AsyncIterator[None]:
    """Requests only queue e-mail; this loop delivers it (runs whether or not the scheduler does)."""
    async for sender in mail_sender_ctx(app[MAILER], app[DB]):
        app[SERVICES]["mail_sender"] = sender
        yield


def setup(app: web.Application) -> None:
    scheduler.setup(app)
    app.cleanup_ctx.append(_mail_sender)
