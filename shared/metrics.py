"""Prometheus metrics: HTTP, outbox and consumers, exposed at `/metrics`."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "kehu_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "kehu_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PUBLISHED = Counter("kehu_outbox_published_total", "Events published", ["service"])
OUTBOX_BACKLOG = Gauge("kehu_outbox_backlog", "Events not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "kehu_outbox_oldest_unpublished_seconds", "Age of the oldest unpublished event", ["service"]
)
CONSUMER_PROCESSED = Counter("kehu_consumer_events_total", "Events consumed", ["group", "outcome"])
CONSUMER_LAG = Gauge("kehu_consumer_lag", "Records behind the high-water mark", ["group"])
CONSUMER_LAST_PROGRESS = Gauge(
    "kehu_consumer_last_progress_timestamp", "Unix time of the last committed batch", ["group"]
)


class MetricsMiddleware:
    """Counts and times every request by its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(
                time.perf_counter() - started
            )


async def metrics_endpoint(request: Request) -> Response:
    refresh = getattr(request.app.state, "refresh_metrics", None)
    if refresh is not None:
        await refresh()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
