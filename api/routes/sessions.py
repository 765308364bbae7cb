"""Session routes: catalog browse/detail/reviews (public), mentor drafts, edits, publish, cancel."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.auth import CurrentUser, optional_user
from api.context import Context
from api.keys import DB
from api.routing import ApiRoutes, path_id
from api.schemas.sessions import (
    MentorSessionsQuery,
    PageQuery,
    ReviewPage,
    SessionCancel,
    SessionCancelOut,
    SessionCreate,
    SessionDetail,
    SessionPage,
    SessionQuery,
    SessionUpdate,
)
from api.services import catalog, catalog_reads, catalog_search

routes = ApiRoutes("sessions")


@routes.get("/api/sessions", query=SessionQuery, response=SessionPage, auth=None)
async def sessions_browse(request: web.Request, *, query: SessionQuery) -> dict[str, Any]:
    """Browse published sessions: filters, free text, sorting, pagination; seats_left on each."""
    return await catalog_reads.browse(request.app[DB], query)


@routes.post("/api/sessions", body=SessionCreate, response=SessionDetail, status=201, auth=("mentor",))
async def sessions_create(request: web.Request, *, body: SessionCreate, user: CurrentUser) -> SessionDetail:
    """Mentor: create a draft session."""
    return await catalog.create_session(Context.of(request.app), user, body)


@routes.get("/api/sessions/{id}", response=SessionDetail, auth=None)
async def sessions_detail(request: web.Request) -> dict[str, Any]:
    """One session: curriculum, ratings, seats_left, whether you booked it (drafts: owner/admin only)."""
    sid = path_id(request)
    return await catalog_reads.session_detail(request.app[DB], sid, await optional_user(request))


@routes.get("/api/sessions/{id}/reviews", query=PageQuery, response=ReviewPage, auth=None)
async def sessions_reviews(request: web.Request, *, query: PageQuery) -> ReviewPage:
    """Reviews of one session, newest first, with the rating aggregate."""
    sid = path_id(request)
    return await catalog_search.reviews(
        request.app[DB], sid, await optional_user(request), page=query.page, page_size=query.page_size
    )


@routes.post("/api/sessions/{id}/update", body=SessionUpdate, response=SessionDetail, auth=("mentor", "admin"))
async def sessions_update(request: web.Request, *, body: SessionUpdate, user: CurrentUser) -> SessionDetail:
    """Edit a draft or scheduled session (its mentor or an admin)."""
    return await catalog.update_session(Context.of(request.app), user, path_id(request), body)


@routes.post("/api/sessions/{id}/publish", response=SessionDetail, auth=("mentor", "admin"))
async def sessions_publish(request: web.Request, *, user: CurrentUser) -> SessionDetail:
    """Publish a draft: it becomes bookable (start in the future, capacity within the maximum)."""
    return await catalog.publish_session(Context.of(request.app), user, path_id(request))


@routes.post("/api/sessions/{id}/cancel", body=SessionCancel, response=SessionCancelOut, auth=("mentor", "admin"))
async def sessions_cancel(request: web.Request, *, body: SessionCancel, user: CurrentUser) -> SessionCancelOut:
    """Cancel a session (its mentor or an admin): every booking refunded, every learner notified."""
    result = await catalog.cancel_session(Context.of(request.app), user, path_id(request), body.reason)
    return SessionCancelOut(
        session=result.session, refunded_bookings=result.refunded_bookings, refunded_cents=result.refunded_cents
    )


@routes.get("/api/mentor/sessions", query=MentorSessionsQuery, response=SessionPage, auth=("mentor",))
async def mentor_sessions_list(request: web.Request, *, query: MentorSessionsQuery, user: CurrentUser) -> SessionPage:
    """Mentor: my sessions in every status (drafts included), optionally filtered by status."""
    return await catalog_search.mentor_sessions(
        request.app[DB], user.id, status=query.status, page=query.page, page_size=query.page_size
    )
