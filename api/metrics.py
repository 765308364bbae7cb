"""Prometheus metrics: request counts and latency by route, one registry per app."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.keys import METRICS


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "peerlearn_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "peerlearn_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.websockets = Gauge("peerlearn_websockets_open", "Open WebSockets", ["kind"], registry=self.registry)
        self.websockets_dropped = Counter(
            "peerlearn_websockets_slow_dropped_total",
            "Realtime sockets closed (4008) because their client could not keep up",
            registry=self.registry,
        )
        # labels() hashes and locks on every call: the children are looked up once per series.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


def route_label(request: web.Request) -> str:
    info = request.match_info
    route = info.route if info is not None else None
    resource = getattr(route, "resource", None)
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    metrics = request.app[METRICS]
    start = time.perf_counter()
    # Errors reach here already turned into responses (api.errors.error_middleware runs inside
    # this one); only a redirect (an HTTPException below 400) or a cancelled request is raised.
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.observe(request.method, route_label(request), status, time.perf_counter() - start)
