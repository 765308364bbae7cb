"""Platform settings admins change at run time, stored in the database with an audit trail."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import select

from api.db import Database
from api.models import AuditLog, Setting

log = logging.getLogger(__name__)


def _env_int(name: str, default: int) -> int:
    """A default an operator may set from the environment (the admin store still overrides it)."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


# Money rules (docs/money.md): earnings wait out a hold after the class during
# which the learner may report a problem; a mentor's proposal lapses if not confirmed.
HOLD_MAX_HOURS = 24 * 30


# Every setting's bounds, written once for both the stored values and an admin's change: a
# number nobody could mean (a minimum payout of 10^30 cents, a negative hold, an infinite fee)
# is a 400 naming the field, never a value the money code has to survive.
FeePercent = Annotated[float, Field(ge=0, le=50, allow_inf_nan=False)]
RefundWindowHours = Annotated[int, Field(ge=0, le=24 * 30)]
MaxCapacity = Annotated[int, Field(ge=1, le=200)]
MinPayoutCents = Annotated[int, Field(ge=0, le=10_000_000)]  # up to 100,000.00
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
HoldHours = Annotated[int, Field(ge=0, le=HOLD_MAX_HOURS)]
ProposalTtlHours = Annotated[int, Field(ge=1, le=24 * 14)]
NoShowWaitMinutes = Annotated[int, Field(ge=0, le=120)]
# When a class took place (docs/money.md): the mentor and a learner connected together, after
# the start, for class_held_minutes or class_held_percent of its length (the shorter); a
# learner attended after attend_minutes with the mentor.
HeldMinutes = Annotated[int, Field(ge=1, le=240)]
HeldPercent = Annotated[int, Field(ge=1, le=100)]
AttendMinutes = Annotated[int, Field(ge=1, le=60)]


class PlatformSettings(BaseModel):
    """Every run-time setting with its default; the admin Settings tab edits these."""

    model_config = ConfigDict(extra="forbid")

    platform_fee_percent: FeePercent = 15.0
    refund_window_hours: RefundWindowHours = 24
    max_capacity: MaxCapacity = 20
    min_payout_cents: MinPayoutCents = 1000
    recording_default: bool = False
    recording_retention_days: RetentionDays = 90
    registration_open: bool = True
    earnings_hold_hours: HoldHours = Field(default_factory=lambda: _env_int("PEERLEARN_EARNINGS_HOLD_HOURS", 48))
    proposal_ttl_hours: ProposalTtlHours = Field(default_factory=lambda: _env_int("PEERLEARN_PROPOSAL_TTL_HOURS", 48))
    no_show_wait_minutes: NoShowWaitMinutes = 10
    class_held_minutes: HeldMinutes = 20
    class_held_percent: HeldPercent = 50
    attend_minutes: AttendMinutes = 5


class PlatformSettingsUpdate(BaseModel):
    # Strict: false is not 0, 1 is not true, "10" is not 10.
    model_config = ConfigDict(extra="forbid", strict=True)

    platform_fee_percent: FeePercent | None = None
    refund_window_hours: RefundWindowHours | None = None
    max_capacity: MaxCapacity | None = None
    min_payout_cents: MinPayoutCents | None = None
    # Strict: 0/1 or "yes" are refused, not read as booleans.
    recording_default: StrictBool | None = None
    recording_retention_days: RetentionDays | None = None
    registration_open: StrictBool | None = None
    earnings_hold_hours: HoldHours | None = None
    proposal_ttl_hours: ProposalTtlHours | None = None
    no_show_wait_minutes: NoShowWaitMinutes | None = None
    class_held_minutes: HeldMinutes | None = None
    class_held_percent: HeldPercent | None = None
    attend_minutes: AttendMinutes | None = None


async def get_all(db: Database) -> dict[str, Any]:
    """Every setting, from memory until an admin's change commits (bookings read it each time)."""
    cache = db.caches.cache("platform.settings", ("settings",), max_entries=1)
    return dict(await cache.get_or_load("all", lambda: _load_all(db)))


async def _load_all(db: Database) -> dict[str, Any]:
    async with db.read() as s:
        rows = (await s.scalars(select(Setting))).all()
    defaults = PlatformSettings().model_dump()
    values = dict(defaults)
    for row in rows:
        if row.key not in values:
            continue
        try:
            # Checked one by one: a value stored before these bounds existed must not make every
            # page that reads the settings (booking, payouts, the admin tab itself) a 500.
            PlatformSettings.model_validate({**defaults, row.key: row.value.get("v")})
        except ValidationError:
            log.warning(
                "platform setting %s=%r is out of bounds: using the default %r", row.key, row.value, defaults[row.key]
            )
            continue
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
