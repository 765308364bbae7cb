"""The live room page ``/room/{id}``: signed-in participants only (the mentor or a booked learner).

The page itself is a shell; ``web/static/js/room.js`` fetches a room token, speaks the
room signaling protocol (DESIGN.md section 5, sfu/README.md) and runs the WebRTC side.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.errors import ApiError
from api.keys import DB
from api.models import Session, SessionStatus, User
from api.services.rooms import _participant_role
from web.pages import DASHBOARDS, guard, render

routes = web.RouteTableDef()

SESSIONS_PAGES = {"learner": "/learner/sessions", "mentor": "/mentor/sessions"}


@routes.get(r"/room/{id:\d+}", name="page.room")
@guard()
async def room(request: web.Request, user: CurrentUser) -> web.Response:
    session_id = int(request.match_info["id"])
    async with request.app[DB].read() as s:
        session = await s.get(Session, session_id)
        if session is None:
            raise ApiError(404, "not_found", "We couldn't find this session's room.")
        role = await _participant_role(s, session, user.id)
        if role is None:
            if session.status == SessionStatus.draft:
                raise ApiError(404, "not_found", "We couldn't find this session's room.")
            raise ApiError(403, "forbidden",
                           "This room is only for the session's mentor and the learners who booked it.")
        mentor = await s.get(User, session.mentor_id)
    leave_to = SESSIONS_PAGES.get(role, DASHBOARDS.get(user.role, "/"))
    return render(request, "room/room.html", {
        "session_id": session_id,
        "session_title": session.title,
        "session_status": session.status.value,
        "mentor_name": mentor.full_name if mentor else "",
        "room_role": role,
        "leave_to": leave_to,
        "feedback_to": "/learner/sessions?view=past" if role == "learner" else DASHBOARDS.get(user.role, "/"),
        "dashboard": DASHBOARDS.get(user.role, "/"),
        # the room is full screen: no phone bottom tabs over the controls
        "nav": {"home": DASHBOARDS.get(user.role, "/"), "tabs": [], "notifications": None, "search": None},
    })
