"""Requests: learners ask for custom sessions; mentors propose a price and time (accept) or decline;
the learner confirms the proposal (booked and charged) or declines it."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.keys import LIMITER
from api.routing import ApiRoutes, path_id
from api.schemas.requests import (
    ProposalConfirm,
    RequestAccept,
    RequestAccepted,
    RequestCreate,
    RequestOut,
    RequestPage,
    RequestQuery,
)
from api.services import request_proposals
from api.services import requests as svc

routes = ApiRoutes("requests")


@routes.post(
    "/api/requests/create",
    body=RequestCreate,
    response=RequestOut,
    status=201,
    auth=("learner",),
    name="requests_create",
)
async def create(request: web.Request, *, body: RequestCreate, user: CurrentUser) -> RequestOut:
    """Ask one mentor (``mentor_id``) or all mentors of a domain; they are notified in real time.
    Needs a confirmed e-mail address (403 ``email_unverified``); limited per learner (429)."""
    return await svc.create(Context.of(request.app), user, body, request.app[LIMITER])


@routes.get("/api/requests", query=RequestQuery, response=RequestPage, name="requests_list")
async def list_requests(request: web.Request, *, query: RequestQuery, user: CurrentUser) -> RequestPage:
    """Learner: own requests. Mentor: sent to them and open ones of their domains. Admin: all."""
    return await svc.list_for(Context.of(request.app), user, query)


@routes.get("/api/requests/{id}", response=RequestOut, name="requests_get")
async def get_request(request: web.Request, *, user: CurrentUser) -> RequestOut:
    """One request (its learner, a mentor it is addressed to, or an admin)."""
    return await svc.get(Context.of(request.app), user, path_id(request))


@routes.post("/api/requests/{id}/cancel", response=RequestOut, name="requests_cancel")
async def cancel(request: web.Request, *, user: CurrentUser) -> RequestOut:
    """The learner withdraws their open request."""
    return await svc.cancel(Context.of(request.app), user, path_id(request))


@routes.post(
    "/api/requests/{id}/accept",
    body=RequestAccept,
    response=RequestAccepted,
    auth=("mentor",),
    name="requests_accept",
    errors=(409,),
)
async def accept(request: web.Request, *, body: RequestAccept, user: CurrentUser) -> RequestAccepted:
    """Propose one of the learner's preferred times and a price; nothing is charged until the
    learner confirms (409 if another mentor's proposal came first)."""
    return await svc.accept(Context.of(request.app), user, path_id(request), body)


@routes.post(
    "/api/requests/{id}/proposal/confirm",
    body=ProposalConfirm,
    response=RequestAccepted,
    auth=("learner",),
    name="requests_proposal_confirm",
    errors=(409,),
)
async def confirm_proposal(request: web.Request, *, body: ProposalConfirm, user: CurrentUser) -> RequestAccepted:
    """The learner confirms the proposal they saw (its price, start and mentor): the session is
    scheduled, booked and charged; 409 ``proposal_changed`` if the current proposal differs."""
    return await request_proposals.confirm(Context.of(request.app), user, path_id(request), body)


@routes.post(
    "/api/requests/{id}/proposal/decline",
    response=RequestOut,
    auth=("learner",),
    name="requests_proposal_decline",
    errors=(409,),
)
async def decline_proposal(request: web.Request, *, user: CurrentUser) -> RequestOut:
    """The learner declines the mentor's proposal: nothing is charged, the request is open again."""
    return await request_proposals.decline(Context.of(request.app), user, path_id(request))


@routes.post("/api/requests/{id}/decline", response=RequestOut, auth=("mentor",), name="requests_decline")
async def decline(request: web.Request, *, user: CurrentUser) -> RequestOut:
    """Decline a request addressed to you (an open-to-all one just leaves your list)."""
    return await svc.decline(Context.of(request.app), user, path_id(request))
