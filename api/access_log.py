"""The access log without secrets: ``token=`` values in logged URLs become ``[redacted]``.

Non-browser clients put room and access tokens in WebSocket URLs (``?token=``),
and a page URL such as ``/reset-password?token=`` also travels in ``Referer``.
Every logged value (request line, headers) is passed through :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# token=..., access_token=..., also percent-encoded '=' (%3D), up to the next separator.
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&;\s])(?:[\w.-]*token|password|secret)(?:=|%3D))[^&;#\s\"]*")


def redact(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", text)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger (same format), with secrets in URLs and headers masked."""

    def _format_line(self, request: BaseRequest, response: StreamResponse,
                     time: float) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [(key, redact(value) if isinstance(value, str) else value)
                for key, value in super()._format_line(request, response, time)]


