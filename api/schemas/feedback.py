"""Feedback and public mentor profile models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import Strict
from api.schemas.sessions import Rating, SessionOut


class FeedbackCreate(Strict):
    session_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    rating: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Annotated[str, Field(max_length=2000)] = ""


class FeedbackOut(BaseModel):
    id: int
    session_id: int
    author_id: int
    rating: int
    comment: str
    created_at: datetime


class MentorProfile(BaseModel):
    id: int
    full_name: str
    avatar_url: str | None = None
    bio: str = ""
    domains: list[str] = []
    skills: list[str] = []
    rating: Rating
    followers: int
    following: bool = False
    completed_sessions: int
    upcoming: list[SessionOut]


class FollowOut(BaseModel):
    mentor_id: int
    following: bool
    followers: int
