"""Public pages: landing (with the featured mentors carousel) and the footer pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from api.keys import DB
from api.models import Feedback, Role, Session, SessionStatus, User
from api.services.accounts import avatar_url
from web.pages import render

routes = web.RouteTableDef()

FEATURED_LIMIT = 10


async def featured_mentors(request: web.Request) -> list[dict[str, Any]]:
    """Active mentors, best rated and busiest first, with their rating and session count."""
    rating = (select(Session.mentor_id.label("mentor_id"), func.avg(Feedback.rating).label("avg"),
                     func.count(Feedback.id).label("reviews"))
              .join(Feedback, Feedback.session_id == Session.id)
              .where(Feedback.hidden.is_(False))
              .group_by(Session.mentor_id).subquery())
    sessions = (select(Session.mentor_id.label("mentor_id"), func.count(Session.id).label("n"))
                .where(Session.status.in_([SessionStatus.scheduled, SessionStatus.live, SessionStatus.completed]))
                .group_by(Session.mentor_id).subquery())
    q = (select(User, rating.c.avg, rating.c.reviews, sessions.c.n)
         .outerjoin(rating, rating.c.mentor_id == User.id)
         .outerjoin(sessions, sessions.c.mentor_id == User.id)
         .where(User.role == Role.mentor, User.is_active.is_(True))
         .order_by(func.coalesce(rating.c.reviews, 0).desc(), func.coalesce(sessions.c.n, 0).desc(), User.id)
         .limit(FEATURED_LIMIT))
    async with request.app[DB].read() as s:
        rows = (await s.execute(q)).all()
    return [{"id": u.id, "full_name": u.full_name, "avatar_url": avatar_url(u), "bio": u.bio,
             "domains": list(u.domains or []), "skills": list(u.skills or [])[:4],
             "rating": round(float(avg), 1) if avg is not None else None, "reviews": int(reviews or 0),
             "sessions": int(n or 0)} for u, avg, reviews, n in rows]


@routes.get("/", name="page.landing")
async def landing(request: web.Request) -> web.Response:
    return render(request, "public/landing.html", {"mentors": await featured_mentors(request)})


def _static_page(path: str, template: str, name: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return render(request, template)

    handler.__name__ = name
    routes.get(path, name=f"page.{name}")(handler)


_static_page("/about", "public/about.html", "about")
_static_page("/contact", "public/contact.html", "contact")
_static_page("/terms", "public/terms.html", "terms")
_static_page("/privacy", "public/privacy.html", "privacy")
