"""A mentor's public page (``/mentors/{id}``): who they are and the slot picker learners book 1:1s from."""

from __future__ import annotations

from aiohttp import web

from api.keys import DB
from api.services.settings_store import get_all as platform_settings
from web.pages import render

routes = web.RouteTableDef()


@routes.get(r"/mentors/{id:\d+}", name="page.mentor_public")
async def mentor_public(request: web.Request) -> web.Response:
    """Public, like the API behind it: anyone may look at a mentor's free times; booking one
    sends a visitor to sign in first. The mentor and their slots are loaded by the page's module."""
    window = int((await platform_settings(request.app[DB]))["refund_window_hours"])
    # The cancellation policy is shown before paying, with the window that applies today.
    return render(
        request, "mentors/profile.html", {"mentor_id": int(request.match_info["id"]), "refund_window": window}
    )
