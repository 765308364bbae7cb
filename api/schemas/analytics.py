"""A mentor's analytics: enrollments, ratings, revenue, talk time, connection quality."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import QueryModel


class AnalyticsQuery(QueryModel):
    weeks: Annotated[int, Field(ge=1, le=104)] = 12
    mentor_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class WeekPoint(BaseModel):
    week: str
    enrollments: int
    revenue_cents: int


class RatingSummary(BaseModel):
    average: float | None
    count: int
    distribution: dict[str, int]


class Revenue(BaseModel):
    currency: str
    gross_bookings_cents: int
    total_earned_cents: int
    pending_cents: int
    available_cents: int
    paid_out_cents: int


class UserTalk(BaseModel):
    user_id: int
    full_name: str
    seconds: float


class SessionTalk(BaseModel):
    session_id: int
    title: str
    mentor_seconds: float
    learners_seconds: float
    by_user: list[UserTalk]


class TalkTime(BaseModel):
    mentor_seconds: float
    learners_seconds: float
    mentor_share: float | None
    sessions: list[SessionTalk]


class SessionConnections(BaseModel):
    session_id: int
    title: str
    learners: int
    #: learners poor or lost for at least ``poor_threshold_seconds``
    poor_learners: int
    poor_seconds: float
    mentor_poor_seconds: float


class Connections(BaseModel):
    poor_threshold_seconds: int
    sessions: list[SessionConnections]


class MentorAnalytics(BaseModel):
    mentor_id: int
    followers: int
    learners: int
    enrollments_total: int
    enrollments_weekly: list[WeekPoint]
    sessions: dict[str, int]
    completed_sessions: int
    rating: RatingSummary
    revenue: Revenue
    talk_time: TalkTime
    connection: Connections
