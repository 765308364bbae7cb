"""Admin dashboard (``/admin`` redirects here). Its subtabs (users, sessions, requests, payments,
feedback, ML metrics, settings, health, recordings) are added as their pages land."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from web.notifications_view import notifications_page
from web.overview import admin_overview
from web.pages import guard, render

routes = web.RouteTableDef()


@routes.get("/admin", name="page.admin_root")
@guard("admin")
async def admin_root(request: web.Request, user: CurrentUser) -> web.Response:
    raise web.HTTPFound("/admin/dashboard")


@routes.get("/admin/dashboard", name="page.admin_dashboard")
@guard("admin")
async def dashboard(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "admin/dashboard.html", await admin_overview(request.app[DB]))


@routes.get("/admin/notifications", name="page.admin_notifications")
@guard("admin")
async def admin_notifications(request: web.Request, user: CurrentUser) -> web.Response:
    return await notifications_page(request, user)
