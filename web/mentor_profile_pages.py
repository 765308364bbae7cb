"""A mentor's public page (``/mentors/{id}``): who they are and the slot picker learners book 1:1s from."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from web.pages import guard, render

routes = web.RouteTableDef()


@routes.get(r"/mentors/{id:\d+}", name="page.mentor_public")
@guard()
async def mentor_public(request: web.Request, user: CurrentUser) -> web.Response:
    """The mentor and their free slots are loaded (and a missing mentor reported) by the page's module."""
    return render(request, "mentors/profile.html", {"mentor_id": int(request.match_info["id"])})
