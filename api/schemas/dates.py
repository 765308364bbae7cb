"""The one parser of every date and time a client sends (bodies and query strings).

Python's ``datetime`` ends at 9999-12-31 and begins at year 1, and the code does arithmetic
on what it is given: a filter's bare date becomes the whole day (``+ 1 day``), a class ends
``duration`` after its start, a room closes a grace period after that, an aware value is
converted to UTC. Near either end one of those steps raises ``OverflowError``, a 500. So a
value is accepted only when it lies in ``[EARLIEST, LATEST]`` once read as UTC, a range
with centuries of margin on both sides for any of that arithmetic; anything else (including
a conversion that itself overflows, ``9999-12-31T23:59:59-14:00``) is a field error, the
API's 400.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema

EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
OUT_OF_RANGE = "must be a date between 1900-01-01 and 9000-01-01"

_DATE_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_DATE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def representable(value: datetime) -> datetime:
    """``value`` unchanged if the system can compute with it, else ``ValueError``.

    A naive value is checked as if it were UTC: a time zone applied later moves it by
    less than a day, far inside the margin."""
    try:
        utc = value.astimezone(timezone.utc) if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise ValueError(OUT_OF_RANGE) from exc
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(OUT_OF_RANGE)
    return value


def parse_stored(value: object) -> datetime | None:
    """A date-time this system wrote earlier (ISO 8601), aware in UTC; None when unreadable or
    out of range (a row from before these rules must not turn a page into a 500)."""
    try:
        dt = datetime.fromisoformat(str(value))
        dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
        return representable(dt)
    except ValueError:
        return None


def _iso_date_time(value: object) -> object:
    """ISO 8601 date-time strings only (pydantic's lax mode would read numbers as Unix
    timestamps and a bare date as midnight)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 date-time such as 2030-01-31T18:00:00+01:00")
    return value


def _iso_date_or_date_time(value: object) -> object:
    if isinstance(value, str) and _DATE.match(value):
        return value
    return _iso_date_time(value)


def as_utc(value: datetime) -> datetime:
    """A representable ``value`` as an aware UTC instant; a naive one is read as UTC."""
    representable(value)
    return value.astimezone(timezone.utc) if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)


_IN_RANGE = AfterValidator(representable)

# A date-time, with an offset or naive (then read in a time zone the request names).
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time), _IN_RANGE]
# A date-time that must carry its offset.
AwareIsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_date_time), _IN_RANGE]
# Filters also take a bare date (a whole day in UTC). They compare with stored UTC instants,
# so they come out aware in UTC (a naive value is read as UTC), never naive.
DateOrDateTime = Annotated[
    datetime,
    BeforeValidator(_iso_date_or_date_time),
    AfterValidator(as_utc),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}),
]
