"""``GET /api/mentor/analytics``: a mentor's own numbers (admins may pass ``mentor_id``)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from api.auth import CurrentUser
from api.context import Context
from api.errors import ApiError, bad_request
from api.models import Role, User
from api.routing import ApiRoutes
from api.schemas.common import QueryModel
from api.services import analytics

routes = ApiRoutes("mentor")


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


@routes.get("/api/mentor/analytics", query=AnalyticsQuery, response=MentorAnalytics,
            auth=("mentor", "admin"), name="mentor_analytics")
async def mentor_analytics(request: web.Request, *, query: AnalyticsQuery,
                           user: CurrentUser) -> MentorAnalytics:
    """Followers, enrollments per week, sessions, ratings, revenue (ledger) and talk time."""
    ctx = Context.of(request.app)
    if user.role == Role.admin.value:
        if query.mentor_id is None:
            raise bad_request("Admins choose a mentor with mentor_id.", {"mentor_id": "required"})
        async with ctx.db.read() as s:
            target = await s.get(User, query.mentor_id)
        if target is None or target.role != Role.mentor:
            raise ApiError(404, "not_found", "Mentor not found.")
        mentor_id = target.id
    else:
        if query.mentor_id is not None and query.mentor_id != user.id:
            raise ApiError(403, "forbidden", "You can only see your own analytics.")
        mentor_id = user.id
    return MentorAnalytics(**await analytics.mentor_analytics(ctx, mentor_id, weeks=query.weeks))
