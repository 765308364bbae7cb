"""Recordings learners can replay: a class's ready recordings for the learners who attended it.

Who: a learner with a booking of the session who attended by the attendance rules
(``api.services.attendance``: their peer joined the room; settled bookings say
``attended``), when the session allows replays (``Session.replay_allowed``: the mentor's
choice, on by default for 1:1s). Everyone else gets 404, as if there were nothing.
What: the files the mentor and admins play (``api.services.recordings``), served inline
with HTTP Range; retention deletes them for everyone at once, so a learner's copy never
outlives the mentor's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import Context
from api.models import AttendanceInterval, Booking, BookingStatus, Recording, RecordingStatus, Role, Session
from api.schemas.recordings import ReplayFileOut, ReplayList, ReplayOut
from api.services import recordings
from api.services.errors import NotFound


async def attended(s: AsyncSession, session_id: int, learner_id: int) -> bool:
    """Booked (not cancelled) and present in the room, or already settled as attended."""
    present = exists().where(AttendanceInterval.session_id == session_id, AttendanceInterval.user_id == learner_id)
    return bool(
        await s.scalar(
            select(
                exists().where(
                    Booking.session_id == session_id,
                    Booking.learner_id == learner_id,
                    or_(
                        Booking.status == BookingStatus.attended,
                        (Booking.status == BookingStatus.confirmed) & present,
                    ),
                )
            )
        )
    )


async def _check(s: AsyncSession, session_id: int, user_id: int, role: str) -> Session:
    sess = await s.get(Session, session_id)
    if role != Role.learner.value or sess is None or not await attended(s, session_id, user_id):
        raise NotFound.of("recording")
    if not sess.replay_allowed:
        raise NotFound("The mentor does not share this class's recording.", code="replay_off")
    return sess


def _default_file(rec: dict[str, Any]) -> str:
    """What the player opens first: the MP4 with everyone when exported, else the mentor's track."""
    if rec["export"]["status"] == "ready":
        return "export"
    mentor = next((f for f in rec["files"] if f.get("role") == "mentor"), None)
    return str((mentor or rec["files"][0])["index"])


def _url(rec_id: int, which: str) -> str:
    return f"/api/recordings/{rec_id}/replay?file={which}"


async def for_session(ctx: Context, session_id: int, user_id: int, role: str) -> ReplayList:
    """The ready recordings of a class its attendee may replay, oldest first."""
    async with ctx.db.read() as s:
        sess = await _check(s, session_id, user_id, role)
        rows = (
            await s.scalars(
                select(Recording)
                .where(Recording.session_id == session_id, Recording.status == RecordingStatus.ready)
                .order_by(Recording.started_at, Recording.id)
            )
        ).all()
    items = []
    for row in rows:
        rec = recordings.serialize(row, sess)
        if not rec["files"]:
            continue
        which = _default_file(rec)
        items.append(
            ReplayOut(
                id=rec["id"],
                session_id=session_id,
                duration_s=round(rec["duration_ms"] / 1000, 1),
                url=_url(rec["id"], which),
                content_type="video/mp4" if which == "export" else "video/webm",
                started_at=rec["started_at"],
                files=[
                    ReplayFileOut(
                        index=int(f["index"]),
                        display_name=str(f.get("display_name") or ""),
                        role=str(f.get("role") or ""),
                        duration_s=round(int(f.get("duration_ms") or 0) / 1000, 1),
                        url=_url(rec["id"], str(f["index"])),
                    )
                    for f in rec["files"]
                ],
            )
        )
    return ReplayList(items=items)


async def file_for(ctx: Context, recording_id: int, user_id: int, role: str, which: str | None) -> tuple[Path, str]:
    """(path, content type) of one file of a recording this attendee may replay."""
    async with ctx.db.read() as s:
        row = await s.get(Recording, recording_id)
        if row is None:
            raise NotFound.of("recording")
        sess = await _check(s, row.session_id, user_id, role)
        rec = recordings.serialize(row, sess)
    if rec["status"] != "ready" or not rec["files"]:
        raise NotFound.of("recording")
    path, _name, content_type = recordings.file_for_download(ctx, rec, which or _default_file(rec))
    return path, content_type
