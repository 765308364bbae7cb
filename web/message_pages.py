"""Messages: the inbox (``/messages``), a conversation (``/messages/{id}``, live over /ws),
starting one from a profile or a session (``/messages/new?to=USER``), and a mentor's public
profile (``/mentors/{id}``) with its [Message] button.

The pages render from ``api.services.messages``; the ES modules (messages_inbox.js,
conversation.js) send, page back, mark read and follow the ``message`` events live.
"""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser, optional_user
from api.errors import ApiError
from api.keys import DB
from api.services import accounts, messages
from api.services.feedback import mentor_profile
from api.services.settings_store import get_all as platform_settings
from web.pages import guard, render

routes = web.RouteTableDef()
PARTIES = ("learner", "mentor")
FIRST_PAGE = 50


def _int(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise ApiError(404, "not_found", "Not found.") from exc
    if not 0 < n < 2**31:
        raise ApiError(404, "not_found", "Not found.")
    return n


@routes.get("/messages", name="page.messages")
@guard(*PARTIES)
async def inbox(request: web.Request, user: CurrentUser) -> web.Response:
    data = await messages.conversations(request.app[DB], user.id)
    return render(request, "messages/inbox.html", {"conversations": data.items, "active_tab": "Messages"})


@routes.get(r"/messages/{id:\d+}", name="page.conversation")
@guard(*PARTIES)
async def conversation(request: web.Request, user: CurrentUser) -> web.Response:
    page = await messages.messages(
        request.app[DB], user.id, _int(request.match_info["id"]), before=None, limit=FIRST_PAGE
    )
    return render(
        request,
        "messages/conversation.html",
        {
            "conv": page.conversation,
            "other": page.conversation.other_user,
            "items": page.items,
            "has_more": page.has_more,
        },
    )


@routes.get("/messages/new", name="page.message_new")
@guard(*PARTIES)
async def new_message(request: web.Request, user: CurrentUser) -> web.Response:
    """From a [Message] button: the existing conversation, or an empty one to write the first message in."""
    other_id = _int(request.query.get("to", ""))
    existing = await messages.conversation_with(request.app[DB], user.id, other_id)
    if existing is not None:
        raise web.HTTPFound(f"/messages/{existing}")
    other = await accounts.get_user(request.app[DB], other_id)
    if not other.is_active or other.id == user.id or other.role.value == "admin":
        raise ApiError(404, "not_found", "User not found.")
    return render(
        request,
        "messages/conversation.html",
        {"conv": None, "other": messages.party(other), "items": [], "has_more": False},
    )


@routes.get(r"/mentors/{id:\d+}", name="page.mentor_public")
async def mentor_public(request: web.Request) -> web.Response:
    """A mentor's public profile: bio, rating, upcoming sessions, [Message] and [Request a session]."""
    viewer = await optional_user(request)
    profile = await mentor_profile(request.app[DB], _int(request.match_info["id"]), viewer)
    # The slot picker's cancellation policy is shown before paying, with today's window.
    window = int((await platform_settings(request.app[DB]))["refund_window_hours"])
    return render(request, "public/mentor.html", {"profile": profile, "refund_window": window})
