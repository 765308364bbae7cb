"""The catalogue's hot reads (browse pages, session details) as JSON-ready data, cached.

Many learners read the same pages and few write them, so a page or a detail is
built once (:mod:`api.services.catalog`) and served from memory until a write
to one of the tables it shows commits (:mod:`api.cache`): a booking changes
``sessions.seats_taken`` and so empties these caches in the same moment, which
keeps seat counts exact. What differs per viewer (their booking, ownership,
draft visibility) is added on every request from a cache of the viewer's own
bookings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from api.db import Database
from api.models import Booking, Role, Session, User
from api.schemas.sessions import SessionQuery
from api.services import catalog, catalog_search
from api.services.catalog import ACTIVE_BOOKING, Viewer
from api.services.errors import Conflict, NotFound

# What a page or a detail shows: sessions (seats, status, fields), users (mentor name,
# avatar, deactivation), feedback (ratings).
CATALOG_TABLES = ("sessions", "users", "feedback")
# Bookings and cancellations change only this column: pages and details keep their entry
# and take the seat counts from the seats cache on every read (exact, and one small query
# after a booking instead of rebuilding every cached page).
SEATS = "sessions.seats_taken"


async def browse(db: Database, query: SessionQuery) -> dict[str, Any]:
    """:func:`catalog_search.browse` as JSON-ready data (shared objects: never modify them)."""
    if query.sort == "popularity":  # ordered by seats: the seat counts are part of the page
        cache = db.caches.cache("catalog.pages.popular", CATALOG_TABLES, max_entries=512)
    else:
        cache = db.caches.cache("catalog.pages", CATALOG_TABLES, max_entries=2048, ignores=(SEATS,))
    key = tuple(query.model_dump().items())
    page: dict[str, Any] = await cache.get_or_load(key, lambda: _page(db, query))
    items = page["items"]
    taken = await seats_taken(db, [item["id"] for item in items])
    if all(taken.get(item["id"], item["seats_taken"]) == item["seats_taken"] for item in items):
        return page
    return {**page, "items": [_with_seats(item, taken.get(item["id"], item["seats_taken"])) for item in items]}


def _with_seats(item: dict[str, Any], taken: int) -> dict[str, Any]:
    if taken == item["seats_taken"]:
        return item
    return {**item, "seats_taken": taken, "seats_left": max(0, item["capacity"] - taken)}


async def seats_taken(db: Database, session_ids: list[int]) -> dict[int, int]:
    """Seats taken per session, exact: forgotten at every write to the sessions table."""
    cache = db.caches.cache("catalog.seats", ("sessions",), max_entries=20_000)
    found: dict[int, int] = {}
    missing = []
    for sid in session_ids:
        taken = cache.get(sid)
        if taken is None:
            missing.append(sid)
        else:
            found[sid] = taken
    if missing:
        stamp = cache.token()
        async with db.read() as s:
            rows = (await s.execute(select(Session.id, Session.seats_taken).where(Session.id.in_(missing)))).all()
        for sid, taken in rows:
            found[sid] = taken
            cache.put(sid, taken, stamp)
    return found


async def _page(db: Database, query: SessionQuery) -> dict[str, Any]:
    return (await catalog_search.browse(db, query)).model_dump(mode="json")


async def _cached_public(db: Database, session_id: int) -> dict[str, Any]:
    cache = db.caches.cache("catalog.details", CATALOG_TABLES, max_entries=4096, ignores=(SEATS,))
    public: dict[str, Any] = await cache.get_or_load(session_id, lambda: _public_detail(db, session_id))
    taken = (await seats_taken(db, [session_id])).get(session_id, public["seats_taken"])
    return _with_seats(public, taken)


async def _public_detail(db: Database, session_id: int) -> dict[str, Any]:
    """The detail as an anonymous viewer sees it (drafts too: visibility is checked per
    request), in one round trip."""
    mentor_avg, mentor_n = catalog_search.rating_columns("mentor")
    avg, n = catalog_search.rating_columns("session")
    async with db.read() as s:
        row = (
            await s.execute(
                select(Session, User, mentor_avg, mentor_n, avg, n)
                .join(User, User.id == Session.mentor_id)
                .where(Session.id == session_id)
            )
        ).first()
    if row is None:
        raise NotFound.of("session")
    sess, mentor, mentor_avg, mentor_n, avg, n = row
    return catalog.detail_of(
        sess, mentor, catalog_search.rating_from(mentor_avg, mentor_n), catalog_search.rating_from(avg, n), None, None
    ).model_dump(mode="json")


async def session_detail(db: Database, session_id: int, viewer: Viewer | None) -> dict[str, Any]:
    """:func:`catalog.get_session` as JSON-ready data: 404 for drafts unless the viewer
    is their mentor or an admin; ``booked``/``booking_id``/``is_owner`` for this viewer."""
    public = await _cached_public(db, session_id)
    mentor_id = public["mentor"]["id"]
    if public["status"] == catalog.S.draft.value and not (
        viewer is not None and (viewer.id == mentor_id or viewer.role == Role.admin.value)
    ):
        raise NotFound.of("session")
    if viewer is None:
        return public
    booking_id = (await active_bookings(db, viewer.id)).get(session_id)
    return {**public, "booked": booking_id is not None, "booking_id": booking_id, "is_owner": viewer.id == mentor_id}


async def refuse_booking_early(db: Database, learner: Viewer, session_id: int) -> None:
    """Raise ``already_booked`` or ``sold_out`` when the caches already know a booking would
    end so, before it queues for the database's writer: most refused bookings then cost a
    lookup. The caches are as exact as the database here (any booking or cancellation
    empties them at its commit); everything else is left to the booking transaction."""
    public = await _cached_public(db, session_id)
    if public["status"] != catalog.S.scheduled.value or public["mentor"]["id"] == learner.id:
        return
    if session_id in await active_bookings(db, learner.id):
        raise Conflict("You already have a seat in this session.", code="already_booked")
    if public["seats_left"] == 0 and datetime.fromisoformat(public["starts_at"]) > catalog.utcnow():
        raise Conflict("This session is sold out.", code="sold_out")


async def active_bookings(db: Database, learner_id: int) -> dict[int, int]:
    """session id -> booking id of the learner's active (confirmed/attended) bookings."""
    # Keyed by learner: a booking or cancellation forgets only its learner's entry.
    cache = db.caches.cache("bookings.active", ("bookings",), max_entries=20_000, partition="bookings.learner_id")

    async def load() -> dict[int, int]:
        async with db.read() as s:
            rows = (
                await s.execute(
                    select(Booking.session_id, Booking.id).where(
                        Booking.learner_id == learner_id, Booking.status.in_(ACTIVE_BOOKING)
                    )
                )
            ).all()
        return {sid: bid for sid, bid in rows}

    return await cache.get_or_load(learner_id, load)  # type: ignore[no-any-return]
