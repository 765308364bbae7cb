"""Platform settings admins change at run time, stored in the database with an audit trail."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import select

from api.db import Database
from api.models import AuditLog, Setting


def _env_int(name: str, default: int) -> int:
    """A default an operator may set from the environment (the admin store still overrides it)."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


# Money rules (README "Money rules"): earnings wait out a hold after the class during
# which the learner may report a problem; a mentor's proposal lapses if not confirmed.
HOLD_MAX_HOURS = 24 * 30


class PlatformSettings(BaseModel):
    """Every run-time setting with its default; the admin Settings tab edits these."""

    model_config = ConfigDict(extra="forbid")

    platform_fee_percent: float = Field(default=15.0, ge=0, le=50)
    refund_window_hours: int = Field(default=24, ge=0, le=24 * 30)
    max_capacity: int = Field(default=20, ge=1, le=200)
    min_payout_cents: int = Field(default=1000, ge=0)
    recording_default: bool = False
    recording_retention_days: int = Field(default=90, ge=1, le=3650)
    registration_open: bool = True
    earnings_hold_hours: int = Field(
        default_factory=lambda: _env_int("PEERLEARN_EARNINGS_HOLD_HOURS", 48), ge=0, le=HOLD_MAX_HOURS
    )
    proposal_ttl_hours: int = Field(
        default_factory=lambda: _env_int("PEERLEARN_PROPOSAL_TTL_HOURS", 48), ge=1, le=24 * 14
    )
    no_show_wait_minutes: int = Field(default=10, ge=0, le=120)
    # When a class took place (docs/money.md): the mentor and a learner connected together,
    # after the start, for class_held_minutes or class_held_percent of its length (the
    # shorter); a learner attended after attend_minutes with the mentor.
    class_held_minutes: int = Field(default=20, ge=1, le=240)
    class_held_percent: int = Field(default=50, ge=1, le=100)
    attend_minutes: int = Field(default=5, ge=1, le=60)


class PlatformSettingsUpdate(BaseModel):
    # Strict: false is not 0, 1 is not true, "10" is not 10.
    model_config = ConfigDict(extra="forbid", strict=True)

    platform_fee_percent: float | None = Field(None, ge=0, le=50)
    refund_window_hours: int | None = Field(None, ge=0, le=24 * 30)
    max_capacity: int | None = Field(None, ge=1, le=200)
    min_payout_cents: int | None = Field(None, ge=0)
    # Strict: 0/1 or "yes" are refused, not read as booleans.
    recording_default: StrictBool | None = None
    recording_retention_days: int | None = Field(None, ge=1, le=3650)
    registration_open: StrictBool | None = None
    earnings_hold_hours: int | None = Field(None, ge=0, le=HOLD_MAX_HOURS)
    proposal_ttl_hours: int | None = Field(None, ge=1, le=24 * 14)
    no_show_wait_minutes: int | None = Field(None, ge=0, le=120)
    class_held_minutes: int | None = Field(None, ge=1, le=240)
    class_held_percent: int | None = Field(None, ge=1, le=100)
    attend_minutes: int | None = Field(None, ge=1, le=60)


async def get_all(db: Database) -> dict[str, Any]:
    """Every setting, from memory until an admin's change commits (bookings read it each time)."""
    cache = db.caches.cache("platform.settings", ("settings",), max_entries=1)
    return dict(await cache.get_or_load("all", lambda: _load_all(db)))


async def _load_all(db: Database) -> dict[str, Any]:
    async with db.read() as s:
        rows = (await s.scalars(select(Setting))).all()
    values = PlatformSettings().model_dump()
    for row in rows:
        if row.key in values:
            values[row.key] = row.value.get("v")
    return PlatformSettings(**values).model_dump()


async def update(db: Database, actor_id: int, changes: PlatformSettingsUpdate) -> dict[str, Any]:
    data = changes.model_dump(exclude_none=True)
    async with db.write() as s:
        for key, value in data.items():
            row = await s.get(Setting, key)
            old = row.value.get("v") if row else None
            if row is None:
                s.add(Setting(key=key, value={"v": value}))
            else:
                row.value = {"v": value}
            s.add(AuditLog(actor_id=actor_id, action="settings.update", target=key, details={"old": old, "new": value}))
    return await get_all(db)
