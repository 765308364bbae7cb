"""System routes: liveness, readiness, Prometheus metrics, OpenAPI and its docs page."""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import time
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api import supervisor
from api.errors import ApiError
from api.keys import BROKER, DB, ENDPOINTS, INTERNAL_ADDRESS, METRICS, SETTINGS
from api.proxy import is_proxied
from api.routing import ApiRoutes, build_openapi

routes = ApiRoutes("system")
VERSION = "0.1.0"


@routes.get("/healthz", auth=None)
async def healthz(request: web.Request) -> dict[str, str]:
    """Liveness: 200 once the server is up (does not depend on Redis)."""
    return {"status": "ok", "version": VERSION}


@routes.get("/readyz", auth=None)
async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database and the broker answer. Under ``serve --workers N`` also
    ``workers``: how many of the N run and how often the parent restarted one (a machine
    running short is reported, but this worker stays ready: it can serve)."""
    checks: dict[str, object] = {}
    start = time.perf_counter()
    try:
        async with request.app[DB].read() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    broker_ok = await request.app[BROKER].healthy()
    checks["broker"] = {"ok": broker_ok, "kind": type(request.app[BROKER]).__name__}
    ok = all(c["ok"] for c in checks.values())  # type: ignore[index]
    body: dict[str, object] = {"status": "ok" if ok else "degraded", "checks": checks}
    settings = request.app[SETTINGS]
    if settings.workers > 1 and (status := supervisor.read_status(settings.data_dir)) is not None:
        body["workers"] = supervisor.summary(status)
    return web.json_response(body, status=200 if ok else 503)


def _on_internal_listener(request: web.Request) -> bool:
    internal = request.app[INTERNAL_ADDRESS].url
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not internal or not sockname:
        return False
    parts = urlsplit(internal)
    return (parts.hostname, parts.port) == (sockname[0], sockname[1])


def metrics_allowed(request: web.Request) -> bool:
    """Scrapers only: the metrics token, the internal listener, or a direct local request.

    "Direct" means from loopback with no forwarding header: behind a reverse proxy on the
    same machine every request comes from 127.0.0.1, but the proxy adds X-Forwarded-*.
    """
    token = request.app[SETTINGS].metrics_token
    given = request.headers.get("Authorization", "")
    if token and given.lower().startswith("bearer ") and hmac.compare_digest(given[7:].strip(), token):
        return True
    if _on_internal_listener(request):
        return True
    return _is_loopback(request.remote) and not is_proxied(request)


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


@routes.get("/metrics", auth=None, response_media="text/plain", errors=(403,))
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics (request counts and latency by route, sockets, rooms), for scrapers."""
    if not metrics_allowed(request):
        raise ApiError(403, "forbidden", "Metrics are served to scrapers only (see PEERLEARN_METRICS_TOKEN).")
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def openapi_document(app: web.Application) -> dict[str, object]:
    return build_openapi(app[ENDPOINTS], title="PeerLearn API", version=VERSION)


@routes.get("/api/openapi.json", auth=None)
async def openapi(request: web.Request) -> web.Response:
    """This document: every route with its request and response schemas."""
    return web.json_response(openapi_document(request.app))


@routes.get("/api/docs", auth=None, response_media="text/html")
async def docs(request: web.Request) -> web.Response:
    """Human-readable API reference, rendered here from the OpenAPI document (no CDN)."""
    doc = openapi_document(request.app)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>PeerLearn API</title>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1e293b}"
        "details{border:1px solid #e2e8f0;border-radius:8px;margin:.5rem 0;padding:.5rem 1rem}"
        "summary{cursor:pointer}code.m{font-weight:700;display:inline-block;width:4.5rem}"
        "pre{background:#f8fafc;padding:.75rem;overflow:auto;font-size:12px}</style></head><body>",
        "<h1>PeerLearn API</h1><p>Machine-readable: <a href='/api/openapi.json'>/api/openapi.json</a>. "
        'Errors always look like <code>{"error": {"code", "message", "fields"}}</code>.</p>',
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, object]]]] = {}
    for path, ops in doc["paths"].items():  # type: ignore[union-attr]
        for method, op in ops.items():
            by_tag.setdefault(op["tags"][0], []).append((method, path, op))
    for tag in sorted(by_tag):
        parts.append(f"<h2>{html.escape(tag)}</h2>")
        for method, path, op in by_tag[tag]:
            parts.append(
                f"<details><summary><code class=m>{method.upper()}</code> <code>{html.escape(path)}</code>"
                f" — {html.escape(str(op.get('summary', '')))}</summary>"
            )
            if "requestBody" in op:
                parts.append("<h4>Request</h4><pre>" + html.escape(json.dumps(op["requestBody"], indent=1)) + "</pre>")
            if "parameters" in op:
                parts.append(
                    "<h4>Parameters</h4><pre>" + html.escape(json.dumps(op["parameters"], indent=1)) + "</pre>"
                )
            parts.append(
                "<h4>Responses</h4><pre>"
                + html.escape(
                    json.dumps({k: v for k, v in op["responses"].items() if not k.startswith(("4", "5"))}, indent=1)
                )
                + "</pre></details>"
            )
    parts.append("<h2>Schemas</h2><pre>" + html.escape(json.dumps(doc["components"]["schemas"], indent=1)) + "</pre>")  # type: ignore[index]
    parts.append("</body></html>")
    return web.Response(text="".join(parts), content_type="text/html")
