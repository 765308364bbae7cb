"""Feedback, public mentor profiles and follows."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser, optional_user
from api.context import Context
from api.keys import DB
from api.routing import ApiRoutes, path_id
from api.schemas.feedback import FeedbackCreate, FeedbackOut, FollowOut, MentorProfile
from api.services import feedback

routes = ApiRoutes("feedback")


@routes.post("/api/feedback/create", body=FeedbackCreate, response=FeedbackOut, status=201, auth=("learner",))
async def feedback_create(request: web.Request, *, body: FeedbackCreate, user: CurrentUser) -> FeedbackOut:
    """Rate a completed session you took part in (1-5, comment up to 2000 characters; once)."""
    return await feedback.create_feedback(Context.of(request.app), user, body)


@routes.get("/api/mentors/{id}", response=MentorProfile, auth=None)
async def mentors_profile(request: web.Request) -> MentorProfile:
    """A mentor's public profile: rating, followers, upcoming sessions."""
    mentor_id = path_id(request)
    return await feedback.mentor_profile(request.app[DB], mentor_id, await optional_user(request))


@routes.post("/api/mentors/{id}/follow", response=FollowOut, auth=("learner",))
async def mentors_follow(request: web.Request, *, user: CurrentUser) -> FollowOut:
    """Learner: follow a mentor (idempotent)."""
    return await feedback.follow(request.app[DB], user.id, path_id(request))


@routes.delete("/api/mentors/{id}/follow", response=FollowOut, auth=("learner",))
async def mentors_unfollow(request: web.Request, *, user: CurrentUser) -> FollowOut:
    """Learner: stop following a mentor (idempotent)."""
    return await feedback.unfollow(request.app[DB], user.id, path_id(request))
