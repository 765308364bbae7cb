"""The notifications subtab every role's dashboard has (rendered from the notifications service)."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.services import notifications
from web.pages import render


async def notifications_page(request: web.Request, user: CurrentUser) -> web.Response:
    items, _, unread = await notifications.list_for(request.app[DB], user.id, limit=100)
    return render(request, "notifications.html", {"items": items, "unread": unread})
