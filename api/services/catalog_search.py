"""The public catalog's searches: browse with filters, a session's reviews, a mentor's
sessions, and the rating columns they share (the hot copies are cached in catalog_reads)."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.orm import aliased

from api.db import Database
from api.models import Feedback, Session, User
from api.schemas.sessions import (
    Rating,
    ReviewOut,
    ReviewPage,
    SessionPage,
    SessionQuery,
)
from api.services.catalog import S, Viewer, get_visible, mentor_ratings, session_rating, to_out, to_utc
from api.services.errors import NotFound

log = logging.getLogger(__name__)


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def browse(db: Database, query: SessionQuery) -> SessionPage:
    """Public catalog: scheduled and live sessions (or ``status``), filtered, sorted, paginated."""
    conds: list[Any] = [User.is_active.is_(True)]
    if query.status:
        conds.append(Session.status == S(query.status))
    else:
        conds.append(Session.status.in_((S.scheduled, S.live)))
    if query.domain:
        conds.append(func.lower(Session.domain) == query.domain.strip().lower())
    if query.min_price is not None:
        conds.append(Session.price_cents >= query.min_price)
    if query.max_price is not None:
        conds.append(Session.price_cents <= query.max_price)
    if query.date_from is not None:
        conds.append(Session.starts_at >= to_utc(query.date_from, "UTC"))
    if query.date_to is not None:
        end = to_utc(query.date_to, "UTC")
        if (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0):
            conds.append(Session.starts_at < end + timedelta(days=1))  # a whole day is inclusive
        else:
            conds.append(Session.starts_at <= end)
    if query.mentor_id is not None:
        conds.append(Session.mentor_id == query.mentor_id)
    if query.q and query.q.strip():
        pattern = f"%{_escape_like(query.q.strip().lower())}%"
        conds.append(
            or_(
                *(
                    func.lower(col).like(pattern, escape="\\")
                    for col in (
                        Session.title,
                        Session.description,
                        Session.domain,
                        cast(Session.skills, String),
                        User.full_name,
                    )
                )
            )
        )
    order = {
        "starts_at": (Session.starts_at.asc(), Session.id.asc()),
        "-starts_at": (Session.starts_at.desc(), Session.id.desc()),
        "price": (Session.price_cents.asc(), Session.starts_at.asc(), Session.id.asc()),
        "-price": (Session.price_cents.desc(), Session.starts_at.asc(), Session.id.asc()),
        "popularity": (
            Session.seats_taken.desc(),
            case((Session.capacity > 0, Session.seats_taken * 1000 / Session.capacity), else_=0).desc(),
            Session.starts_at.asc(),
            Session.id.asc(),
        ),
    }[query.sort]
    # One round trip: the page, its total (a window count, taken before LIMIT) and each
    # mentor's rating (correlated subqueries); a page past the end counts separately.
    average, count = rating_columns("mentor")
    base = (
        select(Session, User, average, count, func.count().over())
        .join(User, User.id == Session.mentor_id)
        .where(*conds)
    )
    async with db.read() as s:
        rows = (
            await s.execute(base.order_by(*order).limit(query.page_size).offset((query.page - 1) * query.page_size))
        ).all()
        total = (
            rows[0][4]
            if rows
            else await s.scalar(
                select(func.count()).select_from(
                    select(Session.id).join(User, User.id == Session.mentor_id).where(*conds).subquery()
                )
            )
            or 0
        )
    return SessionPage(
        items=[to_out(sess, u, rating_from(avg, n)) for sess, u, avg, n, _ in rows],
        total=total,
        page=query.page,
        page_size=query.page_size,
    )


@functools.cache
def rating_columns(by: str) -> tuple[Any, Any]:
    """Average and count of visible feedback on the mentor's (``by="mentor"``: correlated to
    ``User.id``) or the session's (``"session"``: to ``Session.id``) classes, as scalar
    subqueries to select next to the rows they rate. Built once: they are immutable and
    building them (an alias) costs more than the query they save."""
    rated = aliased(Session)
    target = rated.mentor_id == User.id if by == "mentor" else Feedback.session_id == Session.id
    base = (
        select()
        .select_from(Feedback)
        .join(rated, rated.id == Feedback.session_id)
        .where(target, Feedback.hidden.is_(False))
    )
    return (
        base.add_columns(func.avg(Feedback.rating)).scalar_subquery(),
        base.add_columns(func.count(Feedback.id)).scalar_subquery(),
    )


def rating_from(avg: Any, n: Any) -> Rating:
    return Rating(average=round(float(avg), 2) if avg is not None else None, count=int(n or 0))


async def reviews(
    db: Database, session_id: int, viewer: Viewer | None, *, page: int = 1, page_size: int = 20
) -> ReviewPage:
    """Visible feedback on a session, newest first, with its aggregate."""
    async with db.read() as s:
        await get_visible(s, session_id, viewer)
        conds = (Feedback.session_id == session_id, Feedback.hidden.is_(False))
        total = await s.scalar(select(func.count(Feedback.id)).where(*conds)) or 0
        rows = (
            await s.execute(
                select(Feedback, User.full_name)
                .join(User, User.id == Feedback.author_id)
                .where(*conds)
                .order_by(Feedback.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        ).all()
        rating = await session_rating(s, session_id)
    return ReviewPage(
        items=[
            ReviewOut(
                id=f.id,
                session_id=f.session_id,
                rating=f.rating,
                comment=f.comment,
                author_name=name,
                created_at=f.created_at,
            )
            for f, name in rows
        ],
        rating=rating,
        total=total,
        page=page,
        page_size=page_size,
    )


async def mentor_sessions(
    db: Database, mentor_id: int, *, status: str | None = None, page: int = 1, page_size: int = 20
) -> SessionPage:
    """A mentor's own sessions, every status (drafts included), soonest first."""
    conds: list[Any] = [Session.mentor_id == mentor_id]
    if status:
        conds.append(Session.status == S(status))
    async with db.read() as s:
        mentor = await s.get(User, mentor_id)
        if mentor is None:
            raise NotFound.of("user")
        total = await s.scalar(select(func.count(Session.id)).where(*conds)) or 0
        rows = (
            await s.scalars(
                select(Session)
                .where(*conds)
                .order_by(Session.starts_at.desc(), Session.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        ).all()
        rating = (await mentor_ratings(s, {mentor_id})).get(mentor_id)
    return SessionPage(items=[to_out(x, mentor, rating) for x in rows], total=total, page=page, page_size=page_size)
