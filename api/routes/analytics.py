"""``GET /api/mentor/analytics``: a mentor's own numbers (admins may pass ``mentor_id``)."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.errors import ApiError, bad_request
from api.models import Role, User
from api.routing import ApiRoutes
from api.schemas.analytics import AnalyticsQuery, MentorAnalytics
from api.services import analytics

routes = ApiRoutes("mentor")


@routes.get(
    "/api/mentor/analytics",
    query=AnalyticsQuery,
    response=MentorAnalytics,
    auth=("mentor", "admin"),
    name="mentor_analytics",
)
async def mentor_analytics(request: web.Request, *, query: AnalyticsQuery, user: CurrentUser) -> MentorAnalytics:
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
