"""Admin dashboard (``/admin`` redirects here) and its subtabs: Users, Sessions, Requests,
Payments, Feedback, ML Metrics, Settings, Health, Recordings, Reports, Notifications.

Every subtab is a template plus its ES module (``web/static/js/admin_*.js``) that reads and
acts through the admin REST API, so filters, confirmations and refreshes need no reloads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.services import messages
from api.services.overview import admin_overview
from web.notifications_view import notifications_page
from web.pages import guard, render

routes = web.RouteTableDef()

# (path segment, route name) of the subtabs that are plain "template + module" pages.
TABS: tuple[tuple[str, str], ...] = (
    ("users", "admin_users"),
    ("sessions", "admin_sessions"),
    ("requests", "admin_requests"),
    ("payments", "admin_payments"),
    ("feedback", "admin_feedback"),
    ("ml-metrics", "admin_ml_metrics"),
    ("settings", "admin_settings"),
    ("health", "admin_health"),
    ("recordings", "admin_recordings"),
)


@routes.get("/admin", name="page.admin_root")
@guard("admin")
async def admin_root(request: web.Request, user: CurrentUser) -> web.Response:
    raise web.HTTPFound("/admin/dashboard")


@routes.get("/admin/dashboard", name="page.admin_dashboard")
@guard("admin")
async def dashboard(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "admin/dashboard.html", await admin_overview(request.app[DB]))


def _tab_handler(template: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A subtab page: the template renders the shell, its ES module loads the data."""

    @guard("admin")
    async def handler(request: web.Request, user: CurrentUser) -> web.Response:
        return render(request, template)

    return handler


for _segment, _name in TABS:
    routes.get(f"/admin/{_segment}", name=f"page.{_name}")(_tab_handler(f"admin/{_segment.replace('-', '_')}.html"))


@routes.get("/admin/reports", name="page.admin_reports")
@guard("admin")
async def admin_reports(request: web.Request, user: CurrentUser) -> web.Response:
    """Reported conversations with their messages: the only messages admins read."""
    return render(request, "admin/reports.html", {"reports": (await messages.reported(request.app[DB])).items})


@routes.get("/admin/notifications", name="page.admin_notifications")
@guard("admin")
async def admin_notifications(request: web.Request, user: CurrentUser) -> web.Response:
    return await notifications_page(request, user)
