"""Messages: sending, the signed-in user's conversations, a conversation's messages, read
marks, blocking and reporting; admins' view of reported conversations."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.keys import DB, LIMITER
from api.routing import ApiRoutes, path_id
from api.schemas.messages import (
    BlockBody,
    BlockOut,
    ConversationList,
    MessageCreate,
    MessageOut,
    MessagePage,
    MessageQuery,
    ReadOut,
    ReportBody,
    ReportedConversationList,
    ReportOut,
)
from api.services import messages

routes = ApiRoutes("messages")
PARTIES = ("learner", "mentor")


@routes.post(
    "/api/messages",
    body=MessageCreate,
    response=MessageOut,
    status=201,
    auth=PARTIES,
    name="messages_send",
    errors=(403, 429),
)
async def send(request: web.Request, *, body: MessageCreate, user: CurrentUser) -> MessageOut:
    """Write to a user (plain text, up to 4000 characters); delivered live over ``/ws`` as a
    ``message`` event. 403 ``not_allowed`` / ``blocked`` / ``email_unverified``; 429 past the limits."""
    return await messages.send(Context.of(request.app), request.app[LIMITER], user.id, body.to_user_id, body.body)


@routes.get("/api/conversations", response=ConversationList, auth=PARTIES, name="conversations_list")
async def list_conversations(request: web.Request, *, user: CurrentUser) -> ConversationList:
    """Your conversations, the latest first, each with its last message and unread count."""
    return await messages.conversations(request.app[DB], user.id)


@routes.get(
    "/api/conversations/{id}/messages",
    query=MessageQuery,
    response=MessagePage,
    auth=PARTIES,
    name="conversations_messages",
)
async def conversation_messages(request: web.Request, *, query: MessageQuery, user: CurrentUser) -> MessagePage:
    """A page of the conversation, oldest first; ``?before=ID`` pages further back (404 unless a party)."""
    return await messages.messages(request.app[DB], user.id, path_id(request), before=query.before, limit=query.limit)


@routes.post("/api/conversations/{id}/read", response=ReadOut, auth=PARTIES, name="conversations_read")
async def mark_read(request: web.Request, *, user: CurrentUser) -> ReadOut:
    """Mark the conversation read; the other party sees the read receipt live."""
    return await messages.mark_read(Context.of(request.app), user.id, path_id(request))


@routes.post(
    "/api/conversations/{id}/block", body=BlockBody, response=BlockOut, auth=PARTIES, name="conversations_block"
)
async def block(request: web.Request, *, body: BlockBody, user: CurrentUser) -> BlockOut:
    """Block the other party (``{"blocked": false}`` lifts it): no messages either way, no notices."""
    conv_id = path_id(request)
    blocked = await messages.set_blocked(request.app[DB], user.id, conv_id, body.blocked)
    return BlockOut(conversation_id=conv_id, blocked=blocked)


@routes.post(
    "/api/conversations/{id}/report",
    body=ReportBody,
    response=ReportOut,
    status=201,
    auth=PARTIES,
    name="conversations_report",
)
async def report(request: web.Request, *, body: ReportBody, user: CurrentUser) -> ReportOut:
    """Report the conversation to the admins, who may then read it."""
    return await messages.report(Context.of(request.app), user.id, path_id(request), body.reason)


@routes.get(
    "/api/admin/conversation-reports",
    response=ReportedConversationList,
    auth="admin",
    name="admin_conversation_reports",
)
async def reported(request: web.Request, *, user: CurrentUser) -> ReportedConversationList:
    """Admins: reported conversations with their messages (the only ones admins read)."""
    return await messages.reported(request.app[DB])
