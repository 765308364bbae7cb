"""Rescheduling routes: a booked 1:1's two people propose a new time, accept, decline or withdraw."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.routing import ApiRoutes, path_id
from api.schemas.scheduling import RescheduleIn, RescheduleOut, RescheduleState
from api.services import reschedule

routes = ApiRoutes("scheduling")


@routes.get("/api/sessions/{id}/reschedule", response=RescheduleState, auth=("learner", "mentor"))
async def reschedule_state(request: web.Request, *, user: CurrentUser) -> RescheduleState:
    """The class's pending new time, if any, and whether I may propose one (its mentor or learner)."""
    return await reschedule.state(Context.of(request.app), user, path_id(request))


@routes.post(
    "/api/sessions/{id}/reschedule", body=RescheduleIn, response=RescheduleOut, status=201, auth=("learner", "mentor")
)
async def reschedule_propose(request: web.Request, *, body: RescheduleIn, user: CurrentUser) -> RescheduleOut:
    """Propose moving a booked 1:1 to another free slot of the mentor; the old time stands until accepted."""
    return await reschedule.propose(Context.of(request.app), user, path_id(request), body.starts_at)


@routes.post("/api/reschedules/{id}/accept", response=RescheduleOut, auth=("learner", "mentor"))
async def reschedule_accept(request: web.Request, *, user: CurrentUser) -> RescheduleOut:
    """Accept the other side's new time: the class moves (409 if the slot was taken meanwhile)."""
    return await reschedule.accept(Context.of(request.app), user, path_id(request))


@routes.post("/api/reschedules/{id}/decline", response=RescheduleOut, auth=("learner", "mentor"))
async def reschedule_decline(request: web.Request, *, user: CurrentUser) -> RescheduleOut:
    """Decline the other side's new time: the class stays as booked."""
    return await reschedule.decline(Context.of(request.app), user, path_id(request))


@routes.post("/api/reschedules/{id}/withdraw", response=RescheduleOut, auth=("learner", "mentor"))
async def reschedule_withdraw(request: web.Request, *, user: CurrentUser) -> RescheduleOut:
    """Take back my own proposal before it is answered."""
    return await reschedule.withdraw(Context.of(request.app), user, path_id(request))
