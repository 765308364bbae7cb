"""Recordings: starting and stopping one in the room, listing, downloading."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Strict
from api.schemas.dates import DateOrDateTime


class RecordingAction(Strict):
    action: Literal["start", "stop"]


class RecordingListQuery(BaseModel):
    session_id: int | None = Field(None, ge=1, le=2**31 - 1)
    mentor_id: int | None = Field(None, ge=1, le=2**31 - 1)
    date_from: DateOrDateTime | None = None
    date_to: DateOrDateTime | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class DownloadQuery(BaseModel):
    file: str | None = Field(None, description="a participant file index (0, 1, ...) or 'export' for the MP4")


class RoomRecordingOut(BaseModel):
    """The room's recording after a start or stop."""

    session_id: int
    recording: bool
    recording_id: int
    status: Literal["recording", "processing", "ready", "failed"]


class RecordingParticipant(BaseModel):
    user_id: int | None
    display_name: str
    role: str


class RecordedStream(BaseModel):
    """One stream of a participant's file: what went in and what was dropped."""

    kind: str
    source: str
    codec: str
    frames: int
    dropped: int


class RecordingFileOut(BaseModel):
    """One participant's WebM (``?file=<index>`` downloads it)."""

    index: int
    name: str
    user_id: int | None
    display_name: str
    role: str
    bytes: int
    duration_ms: int
    #: where this file starts, from the start of the recording
    offset_ms: int
    streams: list[RecordedStream]


class RecordingExport(BaseModel):
    """The composite (grid) MP4 export: ``none`` until one is requested."""

    status: Literal["none", "queued", "running", "ready", "failed"]
    progress: float
    bytes: int | None
    codec: str | None
    error: str
    note: str


class RecordingGap(BaseModel):
    """An interruption the recording went on after (the worker holding the class died):
    nothing was captured between these offsets from the recording's start."""

    start_ms: int
    end_ms: int


class RecordingOut(BaseModel):
    id: int
    session_id: int
    session_title: str | None
    mentor_id: int | None
    status: Literal["recording", "processing", "ready", "failed"]
    participants: list[RecordingParticipant]
    files: list[RecordingFileOut]
    bytes: int
    duration_ms: int
    gaps: list[RecordingGap]
    error: str
    started_at: datetime
    ended_at: datetime | None
    export: RecordingExport


class RecordingList(BaseModel):
    items: list[RecordingOut]


class ReplayFileOut(BaseModel):
    """One participant's track of a replayable recording."""

    index: int
    display_name: str
    role: str
    duration_s: float
    url: str


class ReplayOut(BaseModel):
    """A recording an attendee may play: ``url`` streams it with HTTP Range (seekable)."""

    id: int
    session_id: int
    duration_s: float
    url: str
    content_type: str
    started_at: str
    files: list[ReplayFileOut]


class ReplayList(BaseModel):
    items: list[ReplayOut]
