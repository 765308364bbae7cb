"""Notifications: a user's list with the unread count, and marking them read."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import Strict


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    link: str
    read: bool
    created_at: str


class NotificationList(BaseModel):
    items: list[NotificationOut]
    total: int
    unread: int
    page: int
    page_size: int


class NotificationQuery(Strict):
    unread: bool = False
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    page_size: Annotated[int, Field(ge=1, le=100)] = 50


class MarkRead(Strict):
    ids: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(max_length=500)] | None = None


class MarkReadOut(BaseModel):
    marked: int
    unread: int
