"""The live room page ``/room/{id}``: signed-in participants only (the mentor or a booked learner).

The page itself is a shell; ``web/static/js/room.js`` fetches a room token, speaks the
room signaling protocol (docs/architecture.md, sfu/README.md) and runs the WebRTC side.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB
from api.services.feedback import rating_of
from api.services.room_access import room_entry
from web.pages import DASHBOARDS, guard, render

routes = web.RouteTableDef()

SESSIONS_PAGES = {"learner": "/learner/sessions", "mentor": "/mentor/sessions"}


@routes.get(r"/room/{id:\d+}", name="page.room")
@guard()
async def room(request: web.Request, user: CurrentUser) -> web.Response:
    entry = await room_entry(request.app[DB], int(request.match_info["id"]), user.id)
    role = entry.role
    leave_to = SESSIONS_PAGES.get(role, DASHBOARDS.get(user.role, "/"))
    my_rating = await rating_of(request.app[DB], entry.session_id, user.id) if role == "learner" else None
    return render(
        request,
        "room/room.html",
        {
            "session_id": entry.session_id,
            "session_title": entry.title,
            "session_status": entry.status.value,
            "mentor_name": entry.mentor_name,
            "room_role": role,
            "my_rating": my_rating,
            "leave_to": leave_to,
            "feedback_to": "/learner/sessions?view=past" if role == "learner" else DASHBOARDS.get(user.role, "/"),
            "dashboard": DASHBOARDS.get(user.role, "/"),
            # the room is full screen: no phone bottom tabs over the controls
            "nav": {"home": DASHBOARDS.get(user.role, "/"), "tabs": [], "notifications": None, "search": None},
        },
    )
