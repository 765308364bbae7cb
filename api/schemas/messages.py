"""Messages between learners and mentors: sending, conversations, pages of messages, read
marks, blocking and reporting (and the admins' view of reported conversations)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from api.schemas.common import NoControls, QueryModel, Strict, Visible

MAX_BODY = 4000
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
# Line breaks are part of a message; it is stored and shown as plain text, never as HTML.
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BODY), NoControls, Visible]


class MessageCreate(Strict):
    to_user_id: Id
    body: Body


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    sender_id: int
    body: str
    created_at: str
    # The recipient has read it (a read receipt; always true for messages you received).
    read: bool


class Party(BaseModel):
    id: int
    full_name: str
    role: str
    avatar_url: str | None = None


class ConversationOut(BaseModel):
    id: int
    other_user: Party
    last_message: MessageOut | None
    unread: int
    # The other party's read mark: your messages up to this id were read.
    other_read_id: int
    blocked: bool  # you blocked the other party
    # False when either side blocked the other: nothing more can be sent.
    can_write: bool


class ConversationList(BaseModel):
    items: list[ConversationOut]
    unread: int  # over all conversations: the nav bar's badge


class MessageQuery(QueryModel):
    before: Id | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class MessagePage(BaseModel):
    conversation: ConversationOut
    items: list[MessageOut]  # oldest first; ``before`` pages further back
    has_more: bool


class ReadOut(BaseModel):
    conversation_id: int
    read_id: int
    unread: int  # what is left unread over all conversations


class BlockBody(Strict):
    blocked: bool = True


class BlockOut(BaseModel):
    conversation_id: int
    blocked: bool


class ReportBody(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class ReportOut(BaseModel):
    id: int
    conversation_id: int
    created_at: str


class ReportedConversation(BaseModel):
    report_id: int
    conversation_id: int
    reporter: Party
    reason: str
    created_at: str
    parties: list[Party]
    messages: list[MessageOut]  # the latest ones, oldest first


class ReportedConversationList(BaseModel):
    items: list[ReportedConversation]
