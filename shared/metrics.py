"""Prometheus metrics: HTTP, outbox and consumers, exposed at `/metrics`.

With several worker processes (`KEHU_WORKERS`, see `shared.serve`) `PROMETHEUS_MULTIPROC_DIR`
is set and `/metrics` answers the sum over every live process of the service (prometheus_client
multiprocess mode); each gauge says how its per-process values combine.
"""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
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
# The cyclic collector's passes: every request in flight on the process waits for each one.
GC_PAUSE = Histogram(
    "kehu_gc_pause_seconds",
    "Cyclic garbage collector passes, by generation",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
OUTBOX_PUBLISHED = Counter("kehu_outbox_published_total", "Events published", ["service"])
# The backlog is one database's: whichever process measured last is right for all.
OUTBOX_BACKLOG = Gauge(
    "kehu_outbox_backlog",
    "Events not yet published",
    ["service"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_AGE = Gauge(
    "kehu_outbox_oldest_unpublished_seconds",
    "Age of the oldest unpublished event",
    ["service"],
    multiprocess_mode="mostrecent",
)
CONSUMER_PROCESSED = Counter("kehu_consumer_events_total", "Events consumed", ["group", "outcome"])
# Each process consumes its share of the group's partitions: the group's lag is the sum.
CONSUMER_LAG = Gauge(
    "kehu_consumer_lag",
    "Records behind the high-water mark",
    ["group"],
    multiprocess_mode="livesum",
)
CONSUMER_LAST_PROGRESS = Gauge(
    "kehu_consumer_last_progress_timestamp",
    "Unix time of the last committed batch",
    ["group"],
    multiprocess_mode="livemax",
)


class GcTimer:
    """Times each collection into `GC_PAUSE` (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self._started = 0.0
        self._series = [GC_PAUSE.labels(str(g)) for g in range(3)]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._series[info["generation"]].observe(time.perf_counter() - self._started)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_stopped() -> None:
    """Drop this process's live gauges from the aggregate (called when a worker stops)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())


def exposition() -> bytes:
    """The metrics text: this process's, or every worker's together in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


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
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
