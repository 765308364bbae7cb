"""ApiError and the middleware that turns every failure into the uniform JSON shape.

``{"error": {"code": "<snake_case>", "message": "<human text>", "fields": {...}}}``
Pages (non-/api paths) get a readable HTML error page instead.

Services raise the domain errors of ``api.services.errors`` and never an HTTP status;
``DOMAIN_STATUS`` below is the one place a domain error gets its status. The HTTP edge
itself (auth, routing, handlers) raises ``ApiError`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.http_exceptions import BadHttpMessage
from pydantic import ValidationError

from api.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Unprocessable,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a client should see: status, machine code, human message, field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


# Seconds a client is asked to wait when the database is unreachable (a restart takes a few).
DATABASE_RETRY_AFTER = 2
# SQLSTATEs of a server that is going away, coming back or full: class 08 (connection
# exceptions), admin/crash shutdown, "the database system is starting up", too many clients.
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (restart, failover, network),
    not that the request was wrong: such a request is worth retrying, so it gets 503."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    state = str(getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None) or "")
    if state.startswith("08") or state in _UNAVAILABLE_STATES:
        return True
    # A refused or reset connection, or a connect timeout, before any driver wrapped it.
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__name__ in (
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
    )


def database_unavailable_error() -> ApiError:
    return ApiError(
        503,
        "database_unavailable",
        "The database is unavailable, try again shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def not_found(what: str = "object") -> ApiError:
    return ApiError(404, "not_found", f"{what.capitalize()} not found.")


def forbidden(message: str = "You may not do this.") -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def bad_request(message: str, fields: dict[str, str] | None = None, code: str = "validation_error") -> ApiError:
    return ApiError(400, code, message, fields)


def unauthorized(message: str = "Authentication required.") -> ApiError:
    return ApiError(401, "unauthorized", message)


EMAIL_INVALID = "Enter an e-mail address you can receive mail at, like name@example.com."


def from_validation(exc: ValidationError) -> ApiError:
    fields: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "__root__"
        msg = str(err.get("msg", "invalid"))
        if msg.lower().startswith("value is not a valid email address"):
            # email-validator's reasons ("a special-use or reserved name ...") are for developers
            msg = EMAIL_INVALID
        fields.setdefault(loc, msg)
    return ApiError(400, "validation_error", "Some fields are invalid.", fields)


#: The HTTP status of each kind of domain error (a subclass takes its nearest base's).
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMedia: 415,
    Unprocessable: 422,
    RateLimited: 429,
    Unavailable: 503,
}


def from_domain(err: DomainError) -> ApiError:
    """The response a client sees for a service's refusal: same code, message and fields."""
    status = next((DOMAIN_STATUS[kind] for kind in type(err).__mro__ if kind in DOMAIN_STATUS), 400)
    # A limited client is told when to come back, as the edge's own 429s do.
    headers = {"Retry-After": str(err.retry_after)} if isinstance(err, RateLimited) else None
    return ApiError(status, err.code, err.message, err.fields, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


def _wants_json(request: web.Request) -> bool:
    path = request.path
    if path.startswith("/api/") or path.startswith("/ws") or path in ("/healthz", "/readyz", "/metrics"):
        return True
    return "application/json" in request.headers.get("Accept", "") and "text/html" not in request.headers.get(
        "Accept", ""
    )


def error_response(request: web.Request, err: ApiError) -> web.StreamResponse:
    if _wants_json(request):
        resp = web.json_response(err.body(), status=err.status, headers=err.headers)
        return resp
    renderer = request.app.get(ERROR_PAGE_RENDERER)
    if renderer is not None:
        return renderer(request, err)
    return web.Response(text=f"{err.status} {err.message}", status=err.status, headers=err.headers)


ErrorPageRenderer = Callable[[web.Request, ApiError], web.StreamResponse]
ERROR_PAGE_RENDERER = web.AppKey[ErrorPageRenderer]("error_page_renderer")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(request, err)
    except DomainError as err:
        return error_response(request, from_domain(err))
    except ValidationError as exc:
        return error_response(request, from_validation(exc))
    except BadHttpMessage as exc:  # a body aiohttp cannot parse, e.g. a NUL in a multipart header
        return error_response(
            request, ApiError(400, "malformed_request", f"The request could not be read: {exc.message}")
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            http_err = ApiError(413, "payload_too_large", "The request body is too large.")
        else:
            code = _HTTP_CODES.get(exc.status, "http_error")
            http_err = ApiError(exc.status, code, exc.reason or code.replace("_", " "))
        if exc.status == 405:
            http_err.headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(request, http_err)
    except (ConnectionResetError, __import__("asyncio").CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - the last line: never a stack trace to clients
        if database_unavailable(exc):  # reached outside Database.read/write (e.g. engine.connect)
            log.warning("database unavailable on %s %s: %r", request.method, request.path, exc)
            return error_response(request, database_unavailable_error())
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(request, ApiError(500, "internal_error", "Something went wrong on our side."))
