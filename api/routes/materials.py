"""Class materials: a session's files (list, upload), and one file (download, delete)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.errors import ApiError
from api.routing import ApiRoutes, path_id
from api.schemas.materials import MaterialList, MaterialOut
from api.upload_reader import read_file_field
from api.services import materials

routes = ApiRoutes("materials")
PARTIES = ("learner", "mentor")


@routes.get("/api/sessions/{id}/materials", response=MaterialList, auth=PARTIES, name="materials_list")
async def list_materials(request: web.Request, *, user: CurrentUser) -> MaterialList:
    """The session's files, for its mentor and its booked learners (404 for anyone else)."""
    return await materials.list_for(Context.of(request.app), path_id(request), user.id)


@routes.post(
    "/api/sessions/{id}/materials",
    response=MaterialOut,
    status=201,
    auth=("mentor",),
    raw_body="multipart/form-data",
    name="materials_upload",
    errors=(413, 415),
)
async def upload(request: web.Request, *, user: CurrentUser) -> MaterialOut:
    """Attach a file (field ``file``): PDF, PNG/JPEG/GIF/WebP or plain text, judged by its content;
    up to 20 MB, 100 MB per session."""
    ctx = Context.of(request.app)
    session_id = path_id(request)
    await materials.ensure_owner(ctx, session_id, user.id, user.role)
    upload = await read_file_field(request, "the file", lambda n: materials.check_size(ctx, n), 256 * 1024)
    return await materials.add(ctx, session_id, user.id, user.role, upload.filename, upload.data)


@routes.get("/api/materials/{id}", auth=PARTIES, name="materials_download", response_media="application/octet-stream")
async def download(request: web.Request, *, user: CurrentUser) -> web.StreamResponse:
    """Download one file (its session's mentor and booked learners; 404 for anyone else)."""
    path, m = await materials.file_for(Context.of(request.app), path_id(request), user.id)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "The file is missing.")
    ascii_name = m.name.encode("ascii", "replace").decode().replace('"', "")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": m.content_type,
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(m.name)}",
            "Cache-Control": "private, max-age=0",
        },
    )


@routes.delete("/api/materials/{id}", status=204, auth=("mentor",), name="materials_delete")
async def delete(request: web.Request, *, user: CurrentUser) -> None:
    """The session's mentor removes a file."""
    await materials.remove(Context.of(request.app), path_id(request), user.id)
