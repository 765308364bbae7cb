"""Readiness before a class: saying you are ready, and who is."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, StrictBool

from api.schemas.common import Strict


class ReadyIn(Strict):
    ready: StrictBool = True


class ReadyOut(BaseModel):
    session_id: int
    user_id: int
    role: str
    ready: bool


class PersonReady(BaseModel):
    user_id: int
    full_name: str = ""
    ready: bool
    ready_at: datetime | None


class ReadyStatus(BaseModel):
    session_id: int
    opens_at: datetime
    closes_at: datetime
    mentor: PersonReady
    learners: list[PersonReady]
    learners_ready: int
    learners_total: int
