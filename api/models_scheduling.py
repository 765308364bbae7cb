"""The scheduling tables (docs/scheduling.md): a mentor's weekly availability, each user's
secret calendar feed, and proposals to move a booked 1:1 (both sides must agree)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from api.orm import Base, utcnow


def _enum(e: type[enum.Enum]) -> Enum:
    return Enum(e, native_enum=False, length=20, values_callable=lambda x: [m.value for m in x], validate_strings=True)


class MentorAvailability(Base):
    """A mentor's weekly booking rules (api/services/availability.py): wall-clock ranges in
    their own IANA zone, so 09:00 in Berlin stays 09:00 in Berlin across DST changes."""

    __tablename__ = "mentor_availability"
    __table_args__ = (
        CheckConstraint("slot_minutes > 0", name="slot_positive"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
    )

    mentor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    #: [{"weekday": 0..6 (Monday 0), "start": "HH:MM", "end": "HH:MM"}]
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=60)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_hours: Mapped[int] = mapped_column(Integer, default=12)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=60)
    #: ["YYYY-MM-DD"], dates in the mentor's zone
    days_off: Mapped[list[str]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CalendarFeed(Base):
    """A user's secret calendar address (``/api/calendar/{secret}.ics``); regenerating
    replaces the secret, so the old address stops answering."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RescheduleStatus(str, enum.Enum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"


class RescheduleProposal(Base):
    """One side of a booked 1:1 asks to move it; until the other side accepts, the old time stands."""

    __tablename__ = "reschedule_proposals"
    __table_args__ = (
        # At most one open proposal per class: the answer always concerns the latest ask.
        Index(
            "uq_reschedule_proposals_pending_session",
            "session_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime]
    previous_starts_at: Mapped[datetime]
    status: Mapped[RescheduleStatus] = mapped_column(_enum(RescheduleStatus), default=RescheduleStatus.pending)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
