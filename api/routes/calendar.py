"""Calendar routes: my secret feed address (read, regenerate) and the feed itself, which calendar
apps fetch without cookies (the secret in the path is the credential)."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.keys import DB, SETTINGS
from api.routing import ApiRoutes
from api.schemas.scheduling import CalendarFeedOut
from api.services import calendar_feed

routes = ApiRoutes("calendar")


@routes.get("/api/calendar/feed", response=CalendarFeedOut)
async def calendar_feed_get(request: web.Request, *, user: CurrentUser) -> CalendarFeedOut:
    """My calendar feed's secret address (the same until I regenerate it)."""
    return await calendar_feed.current(request.app[DB], user.id, request.app[SETTINGS].public_url)


@routes.post("/api/calendar/feed", response=CalendarFeedOut)
async def calendar_feed_regenerate(request: web.Request, *, user: CurrentUser) -> CalendarFeedOut:
    """A new secret address for my feed; the old one stops working at once."""
    return await calendar_feed.regenerate(request.app[DB], user.id, request.app[SETTINGS].public_url)


@routes.get(
    "/api/calendar/{secret:[A-Za-z0-9_-]+}.ics",
    auth=None,
    response=str,
    response_media="text/calendar",
    name="calendar_ics",
)
async def calendar_ics(request: web.Request) -> web.Response:
    """My upcoming (and last month's) classes as iCalendar, with updates and cancellations."""
    body = await calendar_feed.render(request.app[DB], request.match_info["secret"], request.app[SETTINGS].public_url)
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="peerlearn.ics"'},
    )
