"""Notifications: the signed-in user's list (with unread count) and marking them read."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.routing import ApiRoutes
from api.schemas.notifications import (
    MarkRead,
    MarkReadOut,
    NotificationList,
    NotificationOut,
    NotificationQuery,
)
from api.services import notifications

routes = ApiRoutes("notifications")


@routes.get("/api/notifications", query=NotificationQuery, response=NotificationList, name="notifications_list")
async def list_notifications(request: web.Request, *, query: NotificationQuery, user: CurrentUser) -> NotificationList:
    """Your notifications, newest first, with the unread count (``?unread=true`` for unread only)."""
    items, total, unread = await notifications.list_for(
        request.app[DB],
        user.id,
        unread_only=query.unread,
        limit=query.page_size,
        offset=(query.page - 1) * query.page_size,
    )
    return NotificationList(
        items=[NotificationOut(**i) for i in items],
        total=unread if query.unread else total,
        unread=unread,
        page=query.page,
        page_size=query.page_size,
    )


@routes.post("/api/notifications/read", body=MarkRead, response=MarkReadOut, name="notifications_read")
async def mark_read(request: web.Request, *, body: MarkRead, user: CurrentUser) -> MarkReadOut:
    """Mark the given notifications (``ids``) or all of them read; only your own are touched."""
    marked = await notifications.mark_read(request.app[DB], user.id, body.ids)
    _, _, unread = await notifications.list_for(request.app[DB], user.id, limit=1)
    return MarkReadOut(marked=marked, unread=unread)
