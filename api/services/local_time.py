"""Times as a person reads them: in their own IANA zone, with the zone named."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_or_utc(name: str | None) -> ZoneInfo:
    """A profile's zone; UTC when the profile holds nothing usable (never an error: it is only display)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def spoken(value: datetime, zone_name: str | None) -> str:
    """``"Mon 4 Jan 2027, 09:00 CET (Europe/Berlin)"``: the instant on the reader's wall clock."""
    zone = zone_or_utc(zone_name)
    local = value.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()} ({zone.key})"
