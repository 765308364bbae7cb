"""Recommender tables: trained model versions with their offline metrics, and carousel events.

Kept with the rest of the recommender, on the same ``api.orm.Base`` as api/models.py (neither
imports the other); Alembic's env imports both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from api.orm import Base, utcnow

EVENT_KINDS = ("impression", "click", "book")


class RecModel(Base):
    """One trained recommender version: what it was trained on, how long it took, how well it did."""

    __tablename__ = "rec_models"

    version: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"k": 10, "source": "live"|"synthetic", "split": {...}, "models": {"hybrid": {...}, ...}}
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    n_users: Mapped[int] = mapped_column(Integer, default=0)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    n_interactions: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # manual|scheduled|first_request


class RecEvent(Base):
    """A learner saw, clicked or booked a recommended session (online metrics)."""

    __tablename__ = "rec_events"
    __table_args__ = (
        CheckConstraint("kind IN ('impression', 'click', 'book')", name="kind_valid"),
        Index("ix_rec_events_version_kind", "model_version", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    # NULL when the item came from the untrained fallback.
    model_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
