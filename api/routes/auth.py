"""Auth routes: register, login, logout, e-mail verification, password reset."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser, clear_auth_cookies, set_auth_cookies
from api.errors import ApiError
from api.keys import DB, HUB, LIMITER, MAILER, SETTINGS
from api.login_throttle import LoginThrottle
from api.routing import ApiRoutes
from api.schemas.accounts import (
    EmailIn,
    LoginIn,
    LoginOut,
    PasswordResetConfirm,
    RegisterOut,
    TokenIn,
    UserCreate,
    UserMe,
)
from api.schemas.common import Message
from api.services import accounts, settings_store
from api.services.errors import Unauthenticated

routes = ApiRoutes("auth")


def client_ip(request: web.Request) -> str:
    # api.proxy already replaced ``remote`` with the client a trusted proxy names.
    return request.remote or "unknown"


async def rate_limit(request: web.Request, action: str, account: str | None = None) -> None:
    """Per IP and per account: 429 with Retry-After once either is exhausted."""
    settings = request.app[SETTINGS]
    limiter = request.app[LIMITER]
    keys = [f"{action}:ip:{client_ip(request)}"]
    if account:
        keys.append(f"{action}:acct:{account.strip().lower()}")
    for key in keys:
        verdict = await limiter.hit(key, settings.auth_rate_limit, settings.auth_rate_window_seconds)
        if not verdict.allowed:
            raise ApiError(
                429,
                "rate_limited",
                "Too many attempts; wait a minute and try again.",
                headers={"Retry-After": str(verdict.retry_after)},
            )


@routes.post("/api/auth/register", body=UserCreate, response=RegisterOut, status=201, auth=None, errors=(403,))
async def register(request: web.Request, *, body: UserCreate) -> RegisterOut:
    """Create a learner or mentor account and mail the verification link."""
    await rate_limit(request, "register", str(body.email))
    db = request.app[DB]
    if not (await settings_store.get_all(db))["registration_open"]:
        raise ApiError(403, "registration_closed", "Registration is closed at the moment.")
    user = await accounts.register(db, request.app[MAILER], body, public_url=request.app[SETTINGS].public_url)
    return RegisterOut(user=accounts.to_me(user), message="Account created. Check your e-mail to confirm your address.")


@routes.post("/api/auth/login", body=LoginIn, response=LoginOut, auth=None, errors=(401, 403))
async def login(request: web.Request, *, body: LoginIn) -> web.Response:
    """Sign in: returns a bearer token and sets the HttpOnly session cookie."""
    settings = request.app[SETTINGS]
    throttle = LoginThrottle(
        request.app[LIMITER], limit=settings.auth_rate_limit, window_seconds=settings.auth_rate_window_seconds
    )
    ip = client_ip(request)
    await throttle.check(ip, body.email)
    try:
        result = await accounts.login(
            request.app[DB],
            body.email,
            body.password,
            secret=settings.jwt_secret,
            ttl=settings.jwt_ttl_seconds,
            next_url=body.next,
        )
    except Unauthenticated:
        await throttle.failed(ip, body.email)
        raise
    await throttle.succeeded(ip, body.email)
    out = LoginOut(
        access_token=result.token,
        expires_at=result.expires_at,
        user=accounts.to_me(result.user),
        redirect=result.redirect,
    )
    resp = web.json_response(out.model_dump(mode="json"))
    set_auth_cookies(resp, request, result.token, settings.jwt_ttl_seconds)
    return resp


@routes.post("/api/auth/logout", response=Message)
async def logout(request: web.Request, *, user: CurrentUser) -> web.Response:
    """Revoke this token (this login only: the user's other logins stay signed in) and close the
    realtime and room sockets opened with it."""
    await accounts.logout(request.app[DB], user.jti, user.expires_at)
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.close_user_token(user.id, user.jti)
    resp = web.json_response({"message": "Signed out."})
    clear_auth_cookies(resp)
    return resp


@routes.post("/api/auth/verify-email", body=TokenIn, response=UserMe, auth=None)
async def verify_email(request: web.Request, *, body: TokenIn) -> UserMe:
    """Confirm the e-mail address with the mailed token."""
    await rate_limit(request, "verify")
    return accounts.to_me(await accounts.verify_email(request.app[DB], body.token))


async def send_verification_again(request: web.Request, user: CurrentUser) -> bool:
    """Mail a fresh verification link (limited per account); False if already confirmed."""
    settings = request.app[SETTINGS]
    verdict = await request.app[LIMITER].hit(f"verify-resend:user:{user.id}", 5, 3600)
    if not verdict.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "We have sent several links already; check your inbox and spam folder.",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    return await accounts.resend_verification(
        request.app[DB], request.app[MAILER], user.id, public_url=settings.public_url
    )


@routes.post("/api/auth/verify-email/resend", response=Message, name="verify_email_resend", errors=(429,))
async def verify_email_resend(request: web.Request, *, user: CurrentUser) -> Message:
    """Mail a new e-mail confirmation link to the signed-in user."""
    if await send_verification_again(request, user):
        return Message(message="A new confirmation link is on its way to your inbox.")
    return Message(message="Your e-mail address is already confirmed.")


@routes.post("/api/auth/password-reset", body=EmailIn, response=Message, auth=None)
async def password_reset(request: web.Request, *, body: EmailIn) -> Message:
    """Mail a reset link (the answer is the same whether the account exists or not)."""
    await rate_limit(request, "reset", body.email)
    await accounts.request_password_reset(
        request.app[DB], request.app[MAILER], body.email, public_url=request.app[SETTINGS].public_url
    )
    return Message(message="If an account exists for this e-mail, a reset link is on its way.")


@routes.post("/api/auth/password-reset/confirm", body=PasswordResetConfirm, response=Message, auth=None)
async def password_reset_confirm(request: web.Request, *, body: PasswordResetConfirm) -> Message:
    """Set a new password with the mailed token; every existing session ends."""
    await rate_limit(request, "reset-confirm")
    await accounts.confirm_password_reset(request.app[DB], body.token, body.password)
    return Message(message="Password changed. You can sign in now.")
