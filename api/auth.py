"""Who is calling: bearer header or HttpOnly cookie, checked against the database.

Also the CSRF middleware: a cookie-authenticated unsafe request must carry the
token (header ``X-CSRF-Token`` or form field ``csrf_token``) derived from the
session it acts for: HMAC(secret, the session cookie's ``jti``). A token
planted in the ``pl_csrf`` cookie by someone else (a sibling subdomain can set
cookies) or taken from another session is worthless. The ``pl_csrf`` cookie
only carries the value to our scripts. Bearer requests need none (browsers
never attach bearer headers on their own).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import select

from api.errors import ApiError
from api.keys import DB, SETTINGS
from api.models import RevokedToken, Role, User
from api.security import (
    AUTH_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    TokenClaims,
    TokenError,
    csrf_for_session,
    decode_access_token,
    new_csrf_token,
)

_USER_KEY: web.RequestKey["CurrentUser | None"] = web.RequestKey("pl_current_user", object)  # type: ignore[arg-type]
_NEW_CSRF: web.RequestKey[str] = web.RequestKey("pl_new_csrf", str)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Public endpoints that never act with the cookie's authority need no CSRF token.
CSRF_EXEMPT = frozenset(
    {
        "/api/auth/login",
        "/api/auth/register",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
        "/api/auth/verify-email",
    }
)


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller of this request."""

    id: int
    role: str
    email: str
    full_name: str
    jti: str
    expires_at: datetime
    via_cookie: bool

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin.value


def bearer_token(request: web.Request) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(AUTH_COOKIE)
    if cookie:
        return cookie, True
    return None, False


# Who a token is, remembered until a write to these tables commits (logout inserts a
# revoked jti, deactivation and password changes bump users.token_version): revocation
# still takes effect at the very next request, in every process (api.cache).
AUTH_TABLES = ("users", "revoked_tokens")
AUTH_CACHE_SECONDS = 30.0


async def resolve_token(request: web.Request, token: str, via_cookie: bool) -> CurrentUser:
    cache = request.app[DB].caches.cache("auth", AUTH_TABLES, max_entries=20_000, max_age=AUTH_CACHE_SECONDS)
    known: CurrentUser | None = cache.get(token)
    if known is not None and known.expires_at > utcnow():
        return known if known.via_cookie == via_cookie else replace(known, via_cookie=via_cookie)
    stamp = cache.token()
    user = await _resolve_uncached(request, token, via_cookie)
    cache.put(token, user, stamp)
    return user


async def _resolve_uncached(request: web.Request, token: str, via_cookie: bool) -> CurrentUser:
    settings = request.app[SETTINGS]
    try:
        claims: TokenClaims = decode_access_token(settings.jwt_secret, token)
    except TokenError as exc:
        raise ApiError(401, "invalid_token", "Your session is invalid or has expired; please sign in.") from exc
    async with request.app[DB].read() as s:
        # One round trip on every authenticated request: the user and whether this jti was revoked.
        row = (
            await s.execute(
                select(User, RevokedToken.jti)
                .outerjoin(RevokedToken, RevokedToken.jti == claims.jti)
                .where(User.id == claims.user_id)
            )
        ).first()
    user, revoked = (row[0], row[1]) if row is not None else (None, None)
    if user is None or not user.is_active or user.token_version != claims.version or revoked:
        raise ApiError(401, "invalid_token", "Your session is invalid or has expired; please sign in.")
    return CurrentUser(user.id, user.role.value, user.email, user.full_name, claims.jti, claims.expires_at, via_cookie)


async def optional_user(request: web.Request) -> CurrentUser | None:
    """The caller, or None when anonymous or the token is bad (pages use this)."""
    if _USER_KEY in request:
        return request[_USER_KEY]
    token, via_cookie = bearer_token(request)
    user = None
    if token:
        try:
            user = await resolve_token(request, token, via_cookie)
        except ApiError:
            user = None
    request[_USER_KEY] = user
    return user


async def require_user(request: web.Request, roles: tuple[str, ...] | None = None) -> CurrentUser:
    token, via_cookie = bearer_token(request)
    if not token:
        raise ApiError(401, "unauthorized", "Authentication required.")
    cached = request.get(_USER_KEY)
    user = cached if cached is not None else await resolve_token(request, token, via_cookie)
    request[_USER_KEY] = user
    if roles is not None and user.role not in roles:
        raise ApiError(403, "forbidden", "Your role may not do this.")
    return user


def set_auth_cookies(response: web.StreamResponse, request: web.Request, token: str, max_age: int) -> None:
    settings = request.app[SETTINGS]
    secure = settings.secure_cookies or request.secure
    response.set_cookie(AUTH_COOKIE, token, max_age=max_age, httponly=True, samesite="Lax", secure=secure, path="/")
    # Readable by our scripts (not HttpOnly) so they can echo it in X-CSRF-Token; a new
    # session always gets the token of that session (never keeps an older cookie's value).
    bound = _bound_csrf(settings.jwt_secret, token) or new_csrf_token()
    response.set_cookie(CSRF_COOKIE, bound, max_age=max_age, httponly=False, samesite="Strict", secure=secure, path="/")


def clear_auth_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(AUTH_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


def _bound_csrf(secret: str, session_token: str) -> str | None:
    """The CSRF token of the session ``session_token`` (None if it is not a valid session)."""
    try:
        jti = decode_access_token(secret, session_token).jti
    except TokenError:
        return None
    return csrf_for_session(secret, jti)


def csrf_token_for(request: web.Request) -> str:
    """The CSRF token pages embed: the cookie session's own, or a throwaway when signed out."""
    bound = _bound_csrf(request.app[SETTINGS].jwt_secret, request.cookies.get(AUTH_COOKIE, ""))
    token = bound or request.cookies.get(CSRF_COOKIE) or request.get(_NEW_CSRF) or new_csrf_token()
    if request.cookies.get(CSRF_COOKIE) != token:
        request[_NEW_CSRF] = token  # the page's scripts read the cookie: make it match
    return token


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (
        request.method in UNSAFE
        and AUTH_COOKIE in request.cookies
        and request.path not in CSRF_EXEMPT
        and not request.headers.get("Authorization", "").lower().startswith("bearer ")
    ):
        # An invalid session cookie carries no authority: the handler answers 401 on its own.
        expected = _bound_csrf(request.app[SETTINGS].jwt_secret, request.cookies[AUTH_COOKIE])
        if expected is not None:
            given = request.headers.get(CSRF_HEADER, "")
            if not given and request.content_type == "application/x-www-form-urlencoded":
                given = str((await request.post()).get("csrf_token", ""))
            if not given or not hmac.compare_digest(expected, given):
                raise ApiError(403, "csrf_failed", "Missing or wrong CSRF token; reload the page and try again.")
    response = await handler(request)
    new = request.get(_NEW_CSRF)
    if (
        new
        and request.cookies.get(CSRF_COOKIE) != new
        and isinstance(response, web.Response)
        and CSRF_COOKIE not in response.cookies
    ):
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=False,
            samesite="Strict",
            secure=request.app[SETTINGS].secure_cookies or request.secure,
            path="/",
        )
    return response


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
