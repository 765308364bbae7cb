"""The page layer: Jinja2 setup, the shared page context, guards and friendly error pages.

``setup(app)`` is the plugin ``api.app.create_app`` calls. Each area of the site
keeps its handlers in its own module (``web/public_pages.py``,
``web/learner_pages.py`` ...) exposing ``routes`` (an ``aiohttp.web.RouteTableDef``
whose routes are all named ``page.<name>``); add a new area to ``PAGE_MODULES``.
Pages hold no business rules: they render from ``api`` services or leave the
data to the page's ES module, which calls the REST API.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from api.auth import CurrentUser, csrf_token_for, optional_user
from api.errors import ERROR_PAGE_RENDERER, ApiError
from api.keys import DB
from api.services import accounts, messages, notifications
from api.services.errors import DomainError

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

PAGE_MODULES: tuple[str, ...] = (
    "web.public_pages",
    "web.account_pages",
    "web.learner_pages",
    "web.session_pages",
    "web.mentor_pages",
    "web.admin_pages",
    "web.room_pages",
    "web.message_pages",
)

# Suggestions the forms offer (free text is accepted too); the catalogue's own domains come from the API.
DOMAINS: tuple[str, ...] = (
    "Programming",
    "Data Science",
    "Design",
    "Languages",
    "Business",
    "Mathematics",
    "Music",
    "Marketing",
)
TIMEZONES: tuple[str, ...] = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Warsaw",
    "Europe/Athens",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
)

DASHBOARDS = {"learner": "/learner/dashboard", "mentor": "/mentor/dashboard", "admin": "/admin/dashboard"}

# Paths that are never pages: the context processor stays out of their way.
_NOT_PAGES = ("/api/", "/ws", "/static/", "/media/", "/healthz", "/readyz", "/metrics")

PageHandler = Callable[..., Awaitable[web.StreamResponse | dict[str, Any]]]


# Dashboard subtabs per role: (label, path, route name). Only tabs whose route is
# registered are shown, so an area's module can land later without dead links.
SUBTABS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "learner": (
        ("Browse", "/learner/home", "learner_home"),
        ("My Sessions", "/learner/sessions", "learner_sessions"),
        ("Requests", "/learner/requests", "learner_requests"),
        ("Messages", "/messages", "messages"),
        ("Notifications", "/learner/notifications", "learner_notifications"),
    ),
    "mentor": (
        ("My Sessions", "/mentor/sessions", "mentor_sessions"),
        ("Availability", "/mentor/availability", "mentor_availability"),
        ("Requests", "/mentor/requests", "mentor_requests"),
        ("Messages", "/messages", "messages"),
        ("Earnings", "/mentor/earnings", "mentor_earnings"),
        ("Analytics", "/mentor/analytics", "mentor_analytics"),
        ("Profile", "/mentor/profile", "mentor_profile"),
        ("Notifications", "/mentor/notifications", "mentor_notifications"),
    ),
    "admin": (
        ("Users", "/admin/users", "admin_users"),
        ("Sessions", "/admin/sessions", "admin_sessions"),
        ("Requests", "/admin/requests", "admin_requests"),
        ("Payments", "/admin/payments", "admin_payments"),
        ("Feedback", "/admin/feedback", "admin_feedback"),
        ("ML Metrics", "/admin/ml-metrics", "admin_ml_metrics"),
        ("Settings", "/admin/settings", "admin_settings"),
        ("Health", "/admin/health", "admin_health"),
        ("Recordings", "/admin/recordings", "admin_recordings"),
        ("Reports", "/admin/reports", "admin_reports"),
        ("Notifications", "/admin/notifications", "admin_notifications"),
    ),
}

# The phone's bottom tabs: (label, path, route name, icon).
BOTTOM_TABS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "learner": (
        ("Home", "/learner/home", "learner_home", "home"),
        ("Sessions", "/learner/sessions", "learner_sessions", "sessions"),
        ("Requests", "/learner/requests", "learner_requests", "requests"),
        ("Messages", "/messages", "messages", "chat"),
        ("Notifications", "/learner/notifications", "learner_notifications", "bell"),
        ("Profile", "/profile", "profile", "user"),
    ),
    "mentor": (
        ("Home", "/mentor/dashboard", "mentor_dashboard", "home"),
        ("Sessions", "/mentor/sessions", "mentor_sessions", "sessions"),
        ("Requests", "/mentor/requests", "mentor_requests", "requests"),
        ("Messages", "/messages", "messages", "chat"),
        ("Notifications", "/mentor/notifications", "mentor_notifications", "bell"),
        ("Profile", "/profile", "profile", "user"),
    ),
    "admin": (
        ("Home", "/admin/dashboard", "admin_dashboard", "home"),
        ("Sessions", "/admin/sessions", "admin_sessions", "sessions"),
        ("Requests", "/admin/requests", "admin_requests", "requests"),
        ("Notifications", "/admin/notifications", "admin_notifications", "bell"),
        ("Profile", "/profile", "profile", "user"),
    ),
}


def _has_route(app: web.Application, name: str) -> bool:
    """Page routes are named ``page.<name>`` (API routes use bare handler names)."""
    return f"page.{name}" in app.router.named_resources()


def subtabs(app: web.Application, role: str) -> list[dict[str, str]]:
    """The dashboard subtabs of ``role`` whose pages exist."""
    return [{"label": label, "href": href} for label, href, name in SUBTABS.get(role, ()) if _has_route(app, name)]


def nav_for(app: web.Application, user: CurrentUser | None) -> dict[str, Any]:
    """The global navigation: top bar targets and the phone's bottom tabs, per role."""
    if user is None:
        return {"home": "/", "tabs": [], "notifications": None, "search": None, "messages": None}
    role = user.role
    tabs = [
        {"label": label, "href": href, "icon": icon}
        for label, href, name, icon in BOTTOM_TABS.get(role, ())
        if _has_route(app, name)
    ]
    notif = f"/{role}/notifications"
    return {
        "home": DASHBOARDS[role],
        "tabs": tabs,
        "notifications": notif if _has_route(app, f"{role}_notifications") else None,
        "search": "/learner/home" if role == "learner" else None,
        # Admins do not message; they read reported conversations (admin → Reports).
        "messages": "/messages" if role != "admin" and _has_route(app, "messages") else None,
    }


def _anonymous_context(request: web.Request) -> dict[str, Any]:
    return {
        "request": request,
        "request_path": request.path,
        "current_user": None,
        "me": None,
        "nav": nav_for(request.app, None),
        "unread_count": 0,
        "messages_unread": 0,
        "csrf_token": "",
        "subtabs": [],
    }


async def _page_context(request: web.Request) -> dict[str, Any]:
    """current_user, csrf_token, nav and the unread count for every page render."""
    base = _anonymous_context(request)
    if request.path.startswith(_NOT_PAGES):
        return base
    user = await optional_user(request)
    base["current_user"] = user
    base["nav"] = nav_for(request.app, user)
    base["subtabs"] = subtabs(request.app, user.role) if user else []
    base["csrf_token"] = csrf_token_for(request)
    if user is not None:
        try:
            base["me"] = accounts.to_me(await accounts.get_user(request.app[DB], user.id))
            _, _, base["unread_count"] = await notifications.list_for(request.app[DB], user.id, limit=0)
            if base["nav"]["messages"]:
                base["messages_unread"] = await messages.unread_total(request.app[DB], user.id)
        except (ApiError, DomainError):  # database trouble: the page still renders without avatar and badge
            pass
    return base


PAGE_CONTEXT: web.RequestKey[dict[str, Any]] = web.RequestKey("page_context", dict)


@web.middleware
async def page_context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Compute the shared page context once per request, before the handler (and its errors) run."""
    request[PAGE_CONTEXT] = await _page_context(request)
    return await handler(request)


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    """Render a page template with the shared context."""
    base = request.get(PAGE_CONTEXT) or _anonymous_context(request)
    return aiohttp_jinja2.render_template(template, request, {**base, **(context or {})}, status=status)


def login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={quote(request.path_qs, safe='/')}")


def guard(*roles: str) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Page guard: anonymous → /login?next=…; a signed-in user of another role → friendly 403.

    The wrapped handler is called as ``handler(request, user)``.
    """

    def deco(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            user = await optional_user(request)
            if user is None:
                raise login_redirect(request)
            if roles and user.role not in roles:
                wanted = " or ".join(r for r in roles)
                raise ApiError(403, "forbidden", f"This page is for {wanted} accounts.")
            result = await handler(request, user)
            return result  # type: ignore[return-value]

        return wrapper

    return deco


def _render_error(request: web.Request, err: ApiError) -> web.StreamResponse:
    """Friendly HTML for non-API errors (404, 403, 405, 500 ...)."""
    titles = {
        403: "You can't open this page",
        404: "Page not found",
        405: "Not allowed",
        500: "Something went wrong",
        503: "We'll be right back",
    }
    context = {"status": err.status, "title": titles.get(err.status, "Something went wrong"), "message": err.message}
    try:
        response = render(request, "error.html", context, status=err.status)
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        log.exception("error page failed to render")
        response = web.Response(text=f"{err.status} {err.message}", status=err.status)
    for key, value in err.headers.items():
        response.headers[key] = value
    return response


def _static_url(app: web.Application) -> Callable[[str], str]:
    def static(path: str) -> str:
        return str(app.router["static"].url_for(filename=path))

    return static


def setup(app: web.Application) -> None:
    """Plug the page layer into the app: templates, static files, context, error pages, routes."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = _static_url(app)
    env.globals["dashboards"] = DASHBOARDS
    env.globals["domains"] = DOMAINS
    app.router.add_static("/static", STATIC, name="static", append_version=True)
    app.middlewares.append(page_context_middleware)
    app[ERROR_PAGE_RENDERER] = _render_error
    for name in PAGE_MODULES:
        module = importlib.import_module(name)
        app.router.add_routes(module.routes)
