"""A cheap access log: one line per request, written in batches, secrets redacted.

aiohttp's default access logger formats each request through its format
parser and one ``logging`` record (caller lookup, time formatting, handler
lock, a write): under load that was a quarter of the server's CPU per request.
Here a line is one f-string with the time formatted once per second, and the
lines go out as one record every ``FLUSH_SECONDS`` (or every ``MAX_LINES``),
to the same ``aiohttp.access`` logger, so log configuration still applies.
Values that could carry a secret go through :func:`api.access_log.redact`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from api.access_log import redact

FLUSH_SECONDS = 0.5
MAX_LINES = 1000


class AccessLogBuffer:
    """The lines not written yet, shared by every connection's logger."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._flush_at: asyncio.TimerHandle | None = None

    def stamp(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
        return self._stamp

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= MAX_LINES:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self.lines:
            lines, self.lines = self.lines, []
            self.logger.info("%s", "\n".join(lines))


_SECRET_NAMES = ("token", "password", "secret")


def _clean(value: str) -> str:
    # redact() masks values of parameters named *token, password or secret: a value without
    # those names (most request lines, every plain User-Agent) skips the regular expression.
    lowered = value.lower()
    return redact(value) if any(name in lowered for name in _SECRET_NAMES) else value


def access_logger_class(buffer: AccessLogBuffer) -> type[AbstractAccessLogger]:
    """An aiohttp access logger class (aiohttp makes one per connection) that writes to
    ``buffer``."""

    class BufferedAccessLogger(AbstractAccessLogger):
        @property
        def enabled(self) -> bool:
            return buffer.logger.isEnabledFor(logging.INFO)

        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            headers = request.headers
            version = request.version
            buffer.add(
                f'{request.remote} [{buffer.stamp()}] "{request.method} {_clean(request.path_qs)} '
                f'HTTP/{version.major}.{version.minor}" {response.status} {response.body_length} '
                f'"{_clean(headers.get("Referer", "-"))}" "{_clean(headers.get("User-Agent", "-"))}" '
                f"{time * 1000:.1f}ms"
            )

    return BufferedAccessLogger


def runner_options(enabled: bool) -> tuple[dict[str, Any], AccessLogBuffer | None]:
    """``web.AppRunner`` keyword arguments for the access log, and the buffer to flush at exit."""
    if not enabled:
        return {"access_log": None}, None
    logger = logging.getLogger("aiohttp.access")
    buffer = AccessLogBuffer(logger)
    return {"access_log": logger, "access_log_class": access_logger_class(buffer)}, buffer
