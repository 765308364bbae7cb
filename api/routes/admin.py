"""Admin API: users, sessions, requests, payments, feedback, settings, audit log, health. Admins only."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.keys import ENGINE, HUB
from api.routing import ApiRoutes, path_id
from api.schemas.admin import (
    AdminCancel,
    AdminCancelOut,
    AdminFeedback,
    AdminFeedbackPage,
    AdminSessionPage,
    AdminUserPage,
    AuditPage,
    AuditQuery,
    FeedbackQuery,
    Health,
    HideIn,
    PaymentsPage,
    PaymentsQuery,
    SessionsQuery,
    UsersQuery,
)
from api.schemas.requests import RequestPage, RequestQuery
from api.services import admin, requests, settings_store
from api.services.money import ledger
from api.services.settings_store import PlatformSettings, PlatformSettingsUpdate

routes = ApiRoutes("admin")
ADMIN = ("admin",)


@routes.get("/api/admin/users", query=UsersQuery, response=AdminUserPage, auth=ADMIN, name="admin_users")
async def users(request: web.Request, *, query: UsersQuery, user: CurrentUser) -> AdminUserPage:
    """Search users by e-mail or name; filter by role and active state."""
    out = await admin.list_users(
        Context.of(request.app),
        q=query.q,
        role=query.role,
        active=query.active,
        page=query.page,
        page_size=query.page_size,
    )
    return AdminUserPage(**out)


@routes.get("/api/admin/sessions", query=SessionsQuery, response=AdminSessionPage, auth=ADMIN, name="admin_sessions")
async def sessions(request: web.Request, *, query: SessionsQuery, user: CurrentUser) -> AdminSessionPage:
    """Every session, any status (drafts included)."""
    out = await admin.list_sessions(
        Context.of(request.app),
        status=query.status,
        q=query.q,
        mentor_id=query.mentor_id,
        page=query.page,
        page_size=query.page_size,
    )
    return AdminSessionPage(**out)


@routes.post(
    "/api/admin/sessions/{id}/cancel",
    body=AdminCancel,
    response=AdminCancelOut,
    auth=ADMIN,
    name="admin_session_cancel",
)
async def cancel_session(request: web.Request, *, body: AdminCancel, user: CurrentUser) -> AdminCancelOut:
    """Cancel a session: every booking refunded, every learner and the mentor notified."""
    from api.services import catalog

    result = await catalog.cancel_session(Context.of(request.app), user, path_id(request), body.reason)
    return AdminCancelOut(
        session_id=result.session.id,
        status=result.session.status,
        refunded_bookings=result.refunded_bookings,
        refunded_cents=result.refunded_cents,
    )


@routes.get("/api/admin/requests", query=RequestQuery, response=RequestPage, auth=ADMIN, name="admin_requests")
async def all_requests(request: web.Request, *, query: RequestQuery, user: CurrentUser) -> RequestPage:
    """Every learner request, newest first."""
    return await requests.list_for(Context.of(request.app), user, query, all_requests=True)


@routes.get("/api/admin/payments", query=PaymentsQuery, response=PaymentsPage, auth=ADMIN, name="admin_payments")
async def payments(request: web.Request, *, query: PaymentsQuery, user: CurrentUser) -> PaymentsPage:
    """The transaction log (sandbox payments): journals with their double-entry legs."""
    out = await ledger.transactions(
        Context.of(request.app),
        page=query.page,
        page_size=query.page_size,
        kind=query.kind,
        account=query.account,
        session_id=query.session_id,
    )
    return PaymentsPage(**out)


@routes.get("/api/admin/feedback", query=FeedbackQuery, response=AdminFeedbackPage, auth=ADMIN, name="admin_feedback")
async def feedback(request: web.Request, *, query: FeedbackQuery, user: CurrentUser) -> AdminFeedbackPage:
    """All reviews, hidden ones included."""
    out = await admin.list_feedback(
        Context.of(request.app),
        hidden=query.hidden,
        session_id=query.session_id,
        page=query.page,
        page_size=query.page_size,
    )
    return AdminFeedbackPage(**out)


@routes.post(
    "/api/admin/feedback/{id}/hide", body=HideIn, response=AdminFeedback, auth=ADMIN, name="admin_feedback_hide"
)
async def hide_feedback(request: web.Request, *, body: HideIn, user: CurrentUser) -> AdminFeedback:
    """Hide a review from sessions and profiles (``{"hidden": false}`` shows it again); audit logged."""
    out = await admin.set_feedback_hidden(Context.of(request.app), user.id, path_id(request), body.hidden)
    return AdminFeedback(**out)


@routes.get("/api/admin/settings", response=PlatformSettings, auth=ADMIN, name="admin_settings_get")
async def get_settings(request: web.Request, *, user: CurrentUser) -> PlatformSettings:
    """Platform settings (fee, refund window, capacity, payouts, recording, registration)."""
    return PlatformSettings(**await settings_store.get_all(Context.of(request.app).db))


@routes.post(
    "/api/admin/settings", body=PlatformSettingsUpdate, response=PlatformSettings, auth=ADMIN, name="admin_settings_set"
)
async def set_settings(request: web.Request, *, body: PlatformSettingsUpdate, user: CurrentUser) -> PlatformSettings:
    """Change some settings; each change is written to the audit log (who, old, new)."""
    return PlatformSettings(**await settings_store.update(Context.of(request.app).db, user.id, body))


@routes.get("/api/admin/audit", query=AuditQuery, response=AuditPage, auth=ADMIN, name="admin_audit")
async def audit(request: web.Request, *, query: AuditQuery, user: CurrentUser) -> AuditPage:
    """Who changed what, newest first."""
    out = await admin.audit_log(
        Context.of(request.app),
        action=query.action,
        actor_id=query.actor_id,
        page=query.page,
        page_size=query.page_size,
    )
    return AuditPage(**out)


@routes.get("/api/admin/health", response=Health, auth=ADMIN, name="admin_health")
async def health(request: web.Request, *, user: CurrentUser) -> Health:
    """Database latency, broker, rooms and peers, process CPU and memory, version, uptime."""
    from api.routes.system import VERSION

    out = await admin.health(
        Context.of(request.app), engine=request.app.get(ENGINE), hub=request.app.get(HUB), version=VERSION
    )
    return Health(**out)
