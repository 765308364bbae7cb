"""Session detail: Overview | Curriculum | Reviews, live seat count, [Book Now] → modal → [Confirm]."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.errors import ApiError
from web.pages import guard, render

routes = web.RouteTableDef()


@routes.get(r"/sessions/{id:\d+}", name="page.session_detail")
@guard()
async def session_detail(request: web.Request, user: CurrentUser) -> web.Response:
    try:
        session_id = int(request.match_info["id"])
    except ValueError as exc:  # pragma: no cover - the route pattern only lets digits through
        raise ApiError(404, "not_found", "Session not found.") from exc
    return render(
        request, "sessions/detail.html", {"session_id": session_id, "open_booking": request.query.get("book") == "1"}
    )
