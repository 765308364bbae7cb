"""Mentor earnings and payouts."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.routing import ApiRoutes, dump
from api.schemas.earnings import EarningsOut, EarningsQuery, PayoutCreate, PayoutOut
from api.services.money import earnings

routes = ApiRoutes("earnings")


@routes.get("/api/earnings", query=EarningsQuery, response=EarningsOut, auth=("mentor",))
async def earnings_get(request: web.Request, *, query: EarningsQuery, user: CurrentUser) -> EarningsOut:
    """Mentor: total earned, pending, available, paid out, payout history, recent ledger entries."""
    return await earnings.earnings(Context.of(request.app), user.id, query.currency)


@routes.post("/api/earnings/payout", body=PayoutCreate, response=PayoutOut, status=201, auth=("mentor",), errors=(422,))
async def earnings_payout(request: web.Request, *, body: PayoutCreate, user: CurrentUser) -> web.Response:
    """Mentor: pay out part of the available balance (sandbox). Honours ``Idempotency-Key``."""
    out, created = await earnings.request_payout(
        Context.of(request.app), user.id, body.amount_cents, body.currency, request.headers.get("Idempotency-Key")
    )
    return web.json_response(dump(out), status=201 if created else 200)
