"""Times as a person reads them: in their own IANA zone, with the zone named.

Every e-mail and notification body that embeds a time goes through :func:`spoken` with
the recipient's profile zone (``users.timezone``), never a hard-coded UTC: a stored text
cannot follow the reader's clock later, so it must be right for its one reader now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import User


def zone_or_utc(name: str | None) -> ZoneInfo:
    """A profile's zone; UTC when the profile holds nothing usable (never an error: it is only display)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def spoken(value: datetime, zone_name: str | None) -> str:
    """``"Mon 4 Jan 2027, 09:00 CET (Europe/Berlin)"``: the instant on the reader's wall clock
    (``"... 09:00 UTC"`` once, where the abbreviation is already the zone's name)."""
    zone = zone_or_utc(zone_name)
    local = value.astimezone(zone)
    text = f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"
    return text if local.tzname() == zone.key else f"{text} ({zone.key})"


async def user_zones(s: AsyncSession, user_ids: Iterable[int]) -> dict[int, str]:
    """The profile zone of each of ``user_ids`` (one query for everyone a message goes to)."""
    ids = set(user_ids)
    if not ids:
        return {}
    return dict((await s.execute(select(User.id, User.timezone).where(User.id.in_(ids)))).all())
