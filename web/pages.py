"""Page handlers (placeholder until the web layer lands)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="<h1>Learn from Experts Live</h1>", content_type="text/html")

    app.router.add_get("/", index, name="landing")
