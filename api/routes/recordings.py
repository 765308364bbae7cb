"""Recordings: start/stop in the room, list, details, download (HTTP Range), delete, composite export."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.errors import ApiError
from api.keys import PLACEMENT, RECORDINGS
from api.owner_forward import forward_to_owner, forwarded_by_peer
from api.routing import ApiRoutes, path_id
from api.schemas.recordings import (
    DownloadQuery,
    RecordingAction,
    RecordingList,
    RecordingListQuery,
    RecordingOut,
    ReplayList,
    RoomRecordingOut,
)
from api.services import recordings, replays

log = logging.getLogger(__name__)
routes = ApiRoutes("recordings")
STAFF = ("mentor", "admin")


@routes.post(
    "/api/rooms/{id}/recording", body=RecordingAction, response=RoomRecordingOut, auth=("mentor",), errors=(409, 503)
)
async def room_recording(
    request: web.Request, *, body: RecordingAction, user: CurrentUser
) -> dict[str, Any] | web.StreamResponse:
    """The session's mentor starts or stops recording its live room; everyone in it is told."""
    ctx = Context.of(request.app)
    sid = path_id(request)
    await recordings.check_room_mentor(ctx, sid, user.id)
    mgr = request.app[RECORDINGS]
    if mgr.router_of(sid) is None and not forwarded_by_peer(request):
        owner = await request.app[PLACEMENT].holder(sid)
        if owner is not None:  # the room lives in another worker: its recorder is there
            return await forward_to_owner(request, owner)
    if body.action == "start":
        rec = await mgr.start(sid)
        return {"session_id": sid, "recording": True, "recording_id": rec.id, "status": rec.status.value}
    rid = await mgr.stop(sid)
    if rid is None:
        raise ApiError(409, "not_recording", "This room is not being recorded.")
    return {
        "session_id": sid,
        "recording": False,
        "recording_id": rid,
        "status": (await recordings.get(ctx, rid, user.id, "admin"))["status"],
    }


@routes.get("/api/recordings", query=RecordingListQuery, response=RecordingList, auth=STAFF)
async def list_recordings(request: web.Request, *, query: RecordingListQuery, user: CurrentUser) -> dict[str, Any]:
    """Admins see every recording; a mentor the recordings of their own sessions."""
    return await recordings.list_for(
        Context.of(request.app),
        user.id,
        user.role,
        session_id=query.session_id,
        mentor_id=query.mentor_id,
        date_from=query.date_from,
        date_to=query.date_to,
        limit=query.limit,
        offset=query.offset,
    )


@routes.get("/api/recordings/{id}", response=RecordingOut, auth=STAFF)
async def get_recording(request: web.Request, *, user: CurrentUser) -> dict[str, Any]:
    """One recording: status, participants, files, duration, export status and progress."""
    return await recordings.get(Context.of(request.app), path_id(request), user.id, user.role)


@routes.get("/api/recordings/{id}/download", query=DownloadQuery, auth=STAFF, errors=(409,))
async def download(request: web.Request, *, query: DownloadQuery, user: CurrentUser) -> web.StreamResponse:
    """The file (``?file=N`` one participant's WebM, ``?file=export`` the MP4); HTTP Range (206), ETag."""
    ctx = Context.of(request.app)
    rec = await recordings.get(ctx, path_id(request), user.id, user.role)
    path, filename, content_type = recordings.file_for_download(ctx, rec, query.file)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "The recording file is missing.")
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, max-age=0",
        },
    )


@routes.delete("/api/recordings/{id}", auth=STAFF, status=204, errors=(409,))
async def delete_recording(request: web.Request, *, user: CurrentUser) -> None:
    """Delete the recording and its files."""
    await recordings.remove(Context.of(request.app), path_id(request), user.id, user.role)


@routes.post("/api/recordings/{id}/export", response=RecordingOut, auth=STAFF, status=202, errors=(409,))
async def export(request: web.Request, *, user: CurrentUser) -> dict[str, Any]:
    """Start the composite MP4 export (a background process); follow it on GET /api/recordings/{id}."""
    return await request.app[RECORDINGS].request_export(path_id(request), user.id, user.role)


@routes.get("/api/sessions/{id}/recordings", response=ReplayList, auth=("learner",), name="session_replays")
async def session_replays(request: web.Request, *, user: CurrentUser) -> ReplayList:
    """A class's recordings for a learner who attended it (when its mentor shares them); 404 otherwise."""
    return await replays.for_session(Context.of(request.app), path_id(request), user.id, user.role)


@routes.get("/api/recordings/{id}/replay", query=DownloadQuery, auth=("learner",), name="recording_replay")
async def replay(request: web.Request, *, query: DownloadQuery, user: CurrentUser) -> web.StreamResponse:
    """Stream a recording to an attendee: inline, HTTP Range (206) for seeking, its real content type."""
    path, content_type = await replays.file_for(
        Context.of(request.app), path_id(request), user.id, user.role, query.file
    )
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "The recording file is missing.")
    return web.FileResponse(
        path,
        headers={"Content-Type": content_type, "Content-Disposition": "inline", "Cache-Control": "private, max-age=0"},
    )
