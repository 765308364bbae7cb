"""Booking routes: book a seat (idempotent), my bookings, one booking, accept a moved class, cancel."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.context import Context
from api.routing import ApiRoutes, dump, path_id
from api.schemas.bookings import BookingCancelOut, BookingCreate, BookingOut, BookingPage, BookingQuery
from api.schemas.scheduling import SlotBookingIn
from api.services import bookings, slot_booking

routes = ApiRoutes("bookings")


@routes.post(
    "/api/bookings/create", body=BookingCreate, response=BookingOut, status=201, auth=("learner",), errors=(422,)
)
async def bookings_create(request: web.Request, *, body: BookingCreate, user: CurrentUser) -> web.Response:
    """Book a seat (charged in sandbox test mode). Honours an ``Idempotency-Key`` header:
    the same key and body return the same booking (200); another body gets 422."""
    result = await bookings.create_booking(
        Context.of(request.app), user, body.session_id, request.headers.get("Idempotency-Key")
    )
    return web.json_response(dump(result.booking), status=201 if result.created else 200)


@routes.post(
    "/api/bookings/slot", body=SlotBookingIn, response=BookingOut, status=201, auth=("learner",), errors=(422,)
)
async def bookings_slot(request: web.Request, *, body: SlotBookingIn, user: CurrentUser) -> web.Response:
    """Book one of a mentor's free slots: a 1:1 session is created and charged at once
    (409 ``slot_taken`` if someone was faster, ``slot_unavailable`` if it is no free slot).
    Honours an ``Idempotency-Key`` header: a retry returns the same booking (200)."""
    result = await slot_booking.book_slot(
        Context.of(request.app), user, body.mentor_id, body.starts_at, request.headers.get("Idempotency-Key")
    )
    return web.json_response(dump(result.booking), status=201 if result.created else 200)


@routes.get("/api/bookings", query=BookingQuery, response=BookingPage, auth=("learner",))
async def bookings_list(request: web.Request, *, query: BookingQuery, user: CurrentUser) -> BookingPage:
    """My bookings: ``when`` = upcoming | past | all."""
    return await bookings.list_bookings(
        Context.of(request.app), user.id, when=query.when, page=query.page, page_size=query.page_size
    )


@routes.get("/api/bookings/{id}", response=BookingOut)
async def bookings_get(request: web.Request, *, user: CurrentUser) -> BookingOut:
    """One booking (its learner, the session's mentor, or an admin)."""
    return await bookings.get_booking(Context.of(request.app), user, path_id(request))


@routes.post("/api/bookings/{id}/accept-change", response=BookingOut, auth=("learner",), errors=(409,))
async def bookings_accept_change(request: web.Request, *, user: CurrentUser) -> BookingOut:
    """Accept the class's new time or length (the mentor moved it after I booked); until then
    I may cancel it for a full refund whatever the refund window."""
    return await bookings.accept_change(Context.of(request.app), user, path_id(request))


@routes.post("/api/bookings/{id}/cancel", response=BookingCancelOut, auth=("learner",))
async def bookings_cancel(request: web.Request, *, user: CurrentUser) -> BookingCancelOut:
    """Cancel my booking: seat released; full refund if more than the refund window remains."""
    return await bookings.cancel_booking(Context.of(request.app), user, path_id(request))
