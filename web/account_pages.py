"""Account pages: login, the register wizard, e-mail verification, password reset, profile, logout."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser, clear_auth_cookies, optional_user
from api.keys import DB, HUB
from api.routes.auth import send_verification_again
from api.security import safe_next_path
from api.services import accounts
from web.pages import DASHBOARDS, DOMAINS, TIMEZONES, guard, render

routes = web.RouteTableDef()


def _safe_next(value: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    return safe_next_path(value) or ""


@routes.get("/login", name="page.login")
async def login(request: web.Request) -> web.StreamResponse:
    user = await optional_user(request)
    nxt = _safe_next(request.query.get("next"))
    if user is not None:
        raise web.HTTPFound(nxt or DASHBOARDS[user.role])
    return render(
        request,
        "account/login.html",
        {
            "next": nxt,
            "registered": request.query.get("registered") == "1",
            "reset_done": request.query.get("reset") == "1",
            "email": request.query.get("email", ""),
        },
    )


@routes.get("/register", name="page.register")
async def register(request: web.Request) -> web.StreamResponse:
    user = await optional_user(request)
    if user is not None:
        raise web.HTTPFound(DASHBOARDS[user.role])
    role = request.query.get("role")
    return render(
        request, "account/register.html", {"domains": DOMAINS, "role": role if role in ("learner", "mentor") else ""}
    )


@routes.get("/verify-email", name="page.verify_email")
async def verify_email(request: web.Request) -> web.Response:
    return render(
        request,
        "account/verify_email.html",
        {
            "token": request.query.get("token", ""),
            "sent": request.query.get("sent") == "1",
            "already": request.query.get("already") == "1",
        },
    )


@routes.post("/verify-email/resend", name="page.verify_email_resend")
@guard()
async def resend_verification(request: web.Request, user: CurrentUser) -> web.StreamResponse:
    """The banner's "Send the link again" (a CSRF-checked form): mail a fresh link."""
    sent = await send_verification_again(request, user)
    raise web.HTTPFound("/verify-email?sent=1" if sent else "/verify-email?already=1")


@routes.get("/reset-password", name="page.reset_password")
async def reset_password(request: web.Request) -> web.Response:
    return render(request, "account/reset_password.html", {"token": request.query.get("token", "")})


@routes.get("/profile", name="page.profile")
@guard()
async def profile(request: web.Request, user: CurrentUser) -> web.Response:
    me = accounts.to_me(await accounts.get_user(request.app[DB], user.id))
    return render(request, "account/profile.html", {"profile": me, "domains": DOMAINS, "timezones": TIMEZONES})


@routes.post("/logout", name="page.logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """The avatar menu's Logout: revoke this token (CSRF-checked by the middleware) and go home."""
    user = await optional_user(request)
    if user is not None:
        await accounts.logout(request.app[DB], user.jti, user.expires_at)
        hub = request.app.get(HUB)
        if hub is not None:
            await hub.close_user_token(user.id, user.jti)
    resp = web.Response(status=302, headers={"Location": "/"})
    clear_auth_cookies(resp)
    return resp
