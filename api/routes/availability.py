"""Scheduling routes: a mentor's availability rules (their own, and anyone's public view) and free slots."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB, SETTINGS
from api.routing import ApiRoutes, path_id
from api.schemas.scheduling import AvailabilityIn, AvailabilityOut, SlotPage, SlotQuery
from api.services import availability

routes = ApiRoutes("scheduling")


@routes.route("PUT", "/api/mentors/me/availability", body=AvailabilityIn, response=AvailabilityOut, auth="mentor")
async def availability_put(request: web.Request, *, body: AvailabilityIn, user: CurrentUser) -> AvailabilityOut:
    """Set my weekly availability (wall-clock ranges in my time zone), slot length, price and limits."""
    return await availability.set_rules(request.app[DB], user.id, user.role, body)


@routes.get("/api/mentors/me/availability", response=AvailabilityOut, auth="mentor")
async def availability_mine(request: web.Request, *, user: CurrentUser) -> AvailabilityOut:
    """My availability rules (``configured`` is false until I set them)."""
    return await availability.get_rules(request.app[DB], user.id)


@routes.get("/api/mentors/{id}/availability", response=AvailabilityOut, auth=None)
async def availability_public(request: web.Request) -> AvailabilityOut:
    """A mentor's public availability rules."""
    return await availability.get_rules(request.app[DB], path_id(request))


@routes.get("/api/mentors/{id}/slots", query=SlotQuery, response=SlotPage, auth=None)
async def slots_list(request: web.Request, *, query: SlotQuery) -> SlotPage:
    """A mentor's free slots between ``from`` and ``to`` (ISO 8601; at most 92 days)."""
    return await availability.list_slots(
        request.app[DB], request.app[SETTINGS], path_id(request), query.from_, query.to
    )
