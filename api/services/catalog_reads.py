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

from typing import Any

from sqlalchemy import select

from api.db import Database
from api.errors import not_found
from api.models import Booking, Role
from api.schemas_sessions import SessionQuery
from api.services import catalog
from api.services.catalog import ACTIVE_BOOKING, Viewer

# What a page or a detail shows: sessions (seats, status, fields), users (mentor name,
# avatar, deactivation), feedback (ratings).
CATALOG_TABLES = ("sessions", "users", "feedback")


async def browse(db: Database, query: SessionQuery) -> dict[str, Any]:
    """:func:`catalog.browse` as JSON-ready data (a shared object: never modify it)."""
    cache = db.caches.cache("catalog.pages", CATALOG_TABLES, max_entries=2048)
    key = tuple(query.model_dump().items())
    page: dict[str, Any] | None = cache.get(key)
    if page is None:
        stamp = cache.token()
        page = (await catalog.browse(db, query)).model_dump(mode="json")
        cache.put(key, page, stamp)
    return page


async def session_detail(db: Database, session_id: int, viewer: Viewer | None) -> dict[str, Any]:
    """:func:`catalog.get_session` as JSON-ready data: 404 for drafts unless the viewer
    is their mentor or an admin; ``booked``/``booking_id``/``is_owner`` for this viewer."""
    cache = db.caches.cache("catalog.details", CATALOG_TABLES, max_entries=4096)
    public: dict[str, Any] | None = cache.get(session_id)
    if public is None:
        stamp = cache.token()
        # Built as the anonymous viewer sees it; drafts too, their visibility is checked below.
        async with db.read() as s:
            sess = await s.get(catalog.Session, session_id)
            if sess is None:
                raise not_found("session")
            public = (await catalog._detail(s, sess, None)).model_dump(mode="json")
        cache.put(session_id, public, stamp)
    mentor_id = public["mentor"]["id"]
    if public["status"] == catalog.S.draft.value and not (
            viewer is not None and (viewer.id == mentor_id or viewer.role == Role.admin.value)):
        raise not_found("session")
    if viewer is None:
        return public
    booking_id = (await active_bookings(db, viewer.id)).get(session_id)
    return {**public, "booked": booking_id is not None, "booking_id": booking_id,
            "is_owner": viewer.id == mentor_id}


async def active_bookings(db: Database, learner_id: int) -> dict[int, int]:
    """session id -> booking id of the learner's active (confirmed/attended) bookings."""
    cache = db.caches.cache("bookings.active", ("bookings",), max_entries=20_000)
    found: dict[int, int] | None = cache.get(learner_id)
    if found is None:
        stamp = cache.token()
        async with db.read() as s:
            rows = (await s.execute(select(Booking.session_id, Booking.id).where(
                Booking.learner_id == learner_id, Booking.status.in_(ACTIVE_BOOKING)))).all()
        found = {sid: bid for sid, bid in rows}
        cache.put(learner_id, found, stamp)
    return found
