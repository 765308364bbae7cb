"""Recordings: starting and stopping one in the room, listing, downloading."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict


class RecordingAction(Strict):
    action: Literal["start", "stop"]


class RecordingListQuery(BaseModel):
    session_id: int | None = Field(None, ge=1, le=2**31 - 1)
    mentor_id: int | None = Field(None, ge=1, le=2**31 - 1)
    date_from: datetime | None = None
    date_to: datetime | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class DownloadQuery(BaseModel):
    file: str | None = Field(None, description="a participant file index (0, 1, ...) or 'export' for the MP4")
