"""``/api/rooms/{id}/ready``: say you are ready (T–10 min until the end) and see who is."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.routing import ApiRoutes, path_id
from api.schemas.readiness import ReadyIn, ReadyOut, ReadyStatus
from api.services import readiness

routes = ApiRoutes("rooms")


@routes.post("/api/rooms/{id}/ready", body=ReadyIn, response=ReadyOut, name="rooms_ready_set")
async def set_ready(request: web.Request, *, body: ReadyIn, user: CurrentUser) -> ReadyOut:
    """Mentor or booked learner: ready (or not) from 10 minutes before the start until the end."""
    out = await readiness.set_ready(Context.of(request.app), user.id, user.role, path_id(request), body.ready)
    return ReadyOut(**out)


@routes.get("/api/rooms/{id}/ready", response=ReadyStatus, name="rooms_ready_get")
async def get_ready(request: web.Request, *, user: CurrentUser) -> ReadyStatus:
    """Who is ready in this session (participants and admins)."""
    out = await readiness.status(Context.of(request.app), user.id, user.role, path_id(request))
    return ReadyStatus(**out)
