"""Learner dashboard subtabs: Browse (with recommendations), My Sessions, Requests, Notifications.

The lists are filled by each page's ES module from the REST API (sessions,
bookings, requests, recommendations) so filters and live updates work without reloads.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.services import feedback
from web.notifications_view import notifications_page
from web.pages import DOMAINS, guard, render

routes = web.RouteTableDef()


def _browse(request: web.Request, active: str) -> web.Response:
    q = request.query
    return render(
        request,
        "learner/browse.html",
        {
            "domains": DOMAINS,
            "active_tab": active,
            "filters": {
                "domain": q.get("domain", ""),
                "price": q.get("price", ""),
                "date": q.get("date", ""),
                "q": q.get("q", ""),
            },
        },
    )


@routes.get("/learner/dashboard", name="page.learner_dashboard")
@guard("learner")
async def dashboard(request: web.Request, user: CurrentUser) -> web.Response:
    """The dashboard opens on its Browse subtab."""
    return _browse(request, "Browse")


@routes.get("/learner/home", name="page.learner_home")
@guard("learner")
async def home(request: web.Request, user: CurrentUser) -> web.Response:
    return _browse(request, "Browse")


@routes.get("/learner/sessions", name="page.learner_sessions")
@guard("learner")
async def my_sessions(request: web.Request, user: CurrentUser) -> web.Response:
    view = request.query.get("view", "upcoming")
    return render(request, "learner/sessions.html", {"view": "past" if view == "past" else "upcoming"})


@routes.get("/learner/requests", name="page.learner_requests")
@guard("learner")
async def requests_page(request: web.Request, user: CurrentUser) -> web.Response:
    return render(
        request,
        "learner/requests.html",
        {"submitted": request.query.get("submitted") == "1", "domains": DOMAINS, "mentor_id": ""},
    )


@routes.get("/learner/notifications", name="page.learner_notifications")
@guard("learner")
async def learner_notifications(request: web.Request, user: CurrentUser) -> web.Response:
    return await notifications_page(request, user)


@routes.get("/requests/new", name="page.request_new")
@guard("learner")
async def request_new(request: web.Request, user: CurrentUser) -> web.Response:
    # From a mentor's profile (?mentor=ID) the request goes to that mentor alone: the page says whom
    raw = request.query.get("mentor", "")
    mentor = await feedback.active_mentor(request.app[DB], int(raw)) if raw.isdigit() and len(raw) < 10 else None
    return render(
        request,
        "requests/new.html",
        {"domains": DOMAINS, "mentor_id": str(mentor.id) if mentor else "", "mentor": mentor},
    )
