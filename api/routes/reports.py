"""Problem reports: a learner reports a past class during the earnings hold; admins resolve them."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.routing import ApiRoutes, path_id
from api.schemas.reports import (
    LearnerReports,
    ReportCreate,
    ReportOut,
    ReportPage,
    ReportResolve,
    ReportsQuery,
)
from api.services import reports as svc

routes = ApiRoutes("reports")


@routes.post(
    "/api/bookings/{id}/report",
    body=ReportCreate,
    response=ReportOut,
    status=201,
    auth=("learner",),
    name="bookings_report",
    errors=(409,),
)
async def report(request: web.Request, *, body: ReportCreate, user: CurrentUser) -> ReportOut:
    """Report a problem with a past class (during the hold); its payment stays held until an admin decides."""
    return await svc.create(Context.of(request.app), user.id, path_id(request), body.reason)


@routes.get("/api/reports", response=LearnerReports, auth=("learner",), name="reports_mine")
async def mine(request: web.Request, *, user: CurrentUser) -> LearnerReports:
    """The learner's reports and the past bookings they may still report."""
    return await svc.for_learner(Context.of(request.app), user.id)


@routes.get("/api/admin/reports", query=ReportsQuery, response=ReportPage, auth=("admin",), name="admin_reports")
async def all_reports(request: web.Request, *, query: ReportsQuery, user: CurrentUser) -> ReportPage:
    """Every problem report, open ones first."""
    return await svc.list_all(Context.of(request.app), status=query.status, page=query.page, page_size=query.page_size)


@routes.post(
    "/api/admin/reports/{id}/resolve",
    body=ReportResolve,
    response=ReportOut,
    auth=("admin",),
    name="admin_reports_resolve",
    errors=(409,),
)
async def resolve(request: web.Request, *, body: ReportResolve, user: CurrentUser) -> ReportOut:
    """Refund the learner or release the payment to the mentor (409 if already resolved)."""
    return await svc.resolve(Context.of(request.app), user.id, path_id(request), body.action, body.note)
