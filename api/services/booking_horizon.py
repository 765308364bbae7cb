"""How far ahead a class may be sold: a learner pays when booking and the money is held until
the class, so not for decades. Publishing or moving a session, and a request's times and the
mentor's proposal, all stay within it."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.models import utcnow
from api.services.errors import Invalid

BOOKING_HORIZON = timedelta(days=365)


def within_horizon(starts_at: datetime, field: str = "starts_at") -> None:
    """400 on ``field`` for a start more than a year from now."""
    if starts_at > utcnow() + BOOKING_HORIZON:
        raise Invalid("A session can be at most a year ahead.", fields={field: "at most a year ahead"})
