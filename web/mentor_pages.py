"""Mentor dashboard. Its subtabs (sessions, requests, earnings, analytics, profile) are added
here as their pages land; the tab bar shows only the ones whose routes exist."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from web.notifications_view import notifications_page
from web.overview import mentor_overview
from web.pages import guard, render

routes = web.RouteTableDef()


@routes.get("/mentor/dashboard", name="page.mentor_dashboard")
@guard("mentor")
async def dashboard(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/dashboard.html", await mentor_overview(request.app[DB], user.id))


@routes.get("/mentor/notifications", name="page.mentor_notifications")
@guard("mentor")
async def mentor_notifications(request: web.Request, user: CurrentUser) -> web.Response:
    return await notifications_page(request, user)
