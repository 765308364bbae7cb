"""Public pages: landing (with the featured mentors carousel) and the footer pages."""

from __future__ import annotations

from aiohttp import web

from api.keys import DB
from api.services.overview import featured_mentors
from web.pages import render

routes = web.RouteTableDef()


@routes.get("/", name="page.landing")
async def landing(request: web.Request) -> web.Response:
    return render(request, "public/landing.html", {"mentors": await featured_mentors(request.app[DB])})


def _static_page(path: str, template: str, name: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return render(request, template)

    handler.__name__ = name
    routes.get(path, name=f"page.{name}")(handler)


_static_page("/about", "public/about.html", "about")
_static_page("/contact", "public/contact.html", "contact")
_static_page("/terms", "public/terms.html", "terms")
_static_page("/privacy", "public/privacy.html", "privacy")
