"""Security headers on every response (pages, API, static files, errors, WebSocket upgrades).

The policy follows what the pages do: every script is an external ES module
from /static (no inline script, no handler attribute, no eval), so scripts are
``'self'`` only. Styles allow ``'unsafe-inline'`` because templates and the
chart helpers set ``style`` attributes (widths of progress bars and chart bars)
and /api/docs carries its own ``<style>``; CSS cannot run code, scripts stay
locked. Media and images may be ``blob:`` (camera preview, avatar preview before
upload) and ``data:``; sockets go to the same origin (``'self'`` covers ws/wss
of the page's host). Nobody may frame us (clickjacking).
"""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "media-src 'self' blob:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "worker-src 'self'; "
    "manifest-src 'self'; "
    "object-src 'none'; "
    "base-uri 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",  # browsers without frame-ancestors
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, whichever handler made it."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
