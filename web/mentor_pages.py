"""Mentor dashboard and its subtabs: My Sessions (Draft | Scheduled | Past) with the session
form, Availability (the week grid learners book 1:1 slots from), Requests, Earnings,
Analytics, Profile, Notifications.

Each subtab's lists are filled by its ES module (``web/static/js/mentor_*.js``) from the
REST API, so actions and live updates (readiness, new requests) work without reloads.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.services.overview import mentor_overview
from web.notifications_view import notifications_page
from web.pages import DOMAINS, TIMEZONES, guard, render

routes = web.RouteTableDef()

SESSION_VIEWS = ("draft", "scheduled", "past")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CURRENCIES = ("USD", "EUR", "GBP", "INR", "NGN", "BRL", "JPY", "AUD", "CAD")


@routes.get("/mentor/dashboard", name="page.mentor_dashboard")
@guard("mentor")
async def dashboard(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/dashboard.html", await mentor_overview(request.app[DB], user.id))


@routes.get("/mentor/sessions", name="page.mentor_sessions")
@guard("mentor")
async def my_sessions(request: web.Request, user: CurrentUser) -> web.Response:
    view = request.query.get("view", "scheduled")
    return render(
        request,
        "mentor/sessions.html",
        {"view": view if view in SESSION_VIEWS else "scheduled", "domains": DOMAINS, "currencies": CURRENCIES},
    )


@routes.get("/mentor/sessions/new", name="page.mentor_session_new")
@guard("mentor")
async def session_new(request: web.Request, user: CurrentUser) -> web.Response:
    return render(
        request,
        "mentor/session_edit.html",
        {"session_id": "", "domains": DOMAINS, "currencies": CURRENCIES, "active_tab": "My Sessions"},
    )


@routes.get(r"/mentor/sessions/{id:\d+}", name="page.mentor_session_edit")
@guard("mentor")
async def session_edit(request: web.Request, user: CurrentUser) -> web.Response:
    """The full-page form; the session itself is loaded (and authorized) by the API."""
    return render(
        request,
        "mentor/session_edit.html",
        {
            "session_id": request.match_info["id"],
            "domains": DOMAINS,
            "currencies": CURRENCIES,
            "active_tab": "My Sessions",
        },
    )


@routes.get("/mentor/availability", name="page.mentor_availability")
@guard("mentor")
async def availability(request: web.Request, user: CurrentUser) -> web.Response:
    """The week grid; the rules are loaded and saved by the page's module through the API."""
    return render(
        request,
        "mentor/availability.html",
        {"weekdays": WEEKDAYS, "timezones": TIMEZONES, "currencies": CURRENCIES},
    )


@routes.get("/mentor/requests", name="page.mentor_requests")
@guard("mentor")
async def requests_page(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/requests.html")


@routes.get("/mentor/earnings", name="page.mentor_earnings")
@guard("mentor")
async def earnings(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/earnings.html")


@routes.get("/mentor/analytics", name="page.mentor_analytics")
@guard("mentor")
async def analytics(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/analytics.html")


@routes.get("/mentor/profile", name="page.mentor_profile")
@guard("mentor")
async def profile(request: web.Request, user: CurrentUser) -> web.Response:
    return render(request, "mentor/profile.html", {"domains": DOMAINS})


@routes.get("/mentor/notifications", name="page.mentor_notifications")
@guard("mentor")
async def mentor_notifications(request: web.Request, user: CurrentUser) -> web.Response:
    return await notifications_page(request, user)
