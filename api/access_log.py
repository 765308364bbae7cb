"""Secrets out of the access log: ``token=`` values in logged URLs become ``[redacted]``.

Non-browser clients put room and access tokens in WebSocket URLs (``?token=``),
and a page URL such as ``/reset-password?token=`` also travels in ``Referer``.
Calendar apps fetch ``/api/calendar/{secret}.ics``, where the path itself is the
credential. The access logger (``api.access_log_batch``) passes every logged value
that could carry one (request line, headers) through :func:`redact`.
"""

from __future__ import annotations

import re

# token=..., access_token=..., also percent-encoded '=' (%3D), up to the next separator.
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&;\s])(?:[\w.-]*token|password|secret)(?:=|%3D))[^&;#\s\"]*")


# /api/calendar/<secret>.ics: the feed's secret address (api/routes/calendar.py).
_CALENDAR_SECRET = re.compile(r"(/api/calendar/)[A-Za-z0-9_-]+(\.ics)")


def redact(text: str) -> str:
    return _CALENDAR_SECRET.sub(r"\1[redacted]\2", _SECRET_PARAM.sub(r"\1[redacted]", text))
