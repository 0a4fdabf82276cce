"""The edge of every service in one ASGI layer: request id, body size, rate limit, metrics.

Four separate middlewares cost four coroutine frames and four wrapped `send`s on every
request; this one does their four jobs with one wrapped `send` and one wrapped `receive`:

- **request id**: `X-Request-ID` when the caller sent a valid one (a UUID), else a new one; in
  the logs' `correlation_id` context and on the response (as `asgi_correlation_id` does);
- **body size**: a declared or streamed body over the limit is 413 (`shared.limits`);
- **rate limit**: the per-client token bucket, 429 with `Retry-After` (`shared.limits`);
- **metrics**: requests and latency by route template (`shared.metrics`).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from asgi_correlation_id import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.limits import (
    EXEMPT_PREFIXES,
    BodySizeLimitMiddleware,
    RateLimitMiddleware,
    _client_key,
    _problem,
    _TooLarge,
)

logger = logging.getLogger("kehu.edge")
REQUEST_ID = b"x-request-id"


def _valid_request_id(value: str) -> bool:
    try:
        uuid.UUID(value, version=4)
    except ValueError:
        return False
    return True


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_bytes: int,
        overrides: dict[str, int] | None = None,
        rate: float = 0,
        burst: int = 1,
    ) -> None:
        self.app = app
        self.service = service
        self.sizes = BodySizeLimitMiddleware(app, max_bytes, overrides)
        self.limiter = RateLimitMiddleware(app, rate, burst)
        # The request counter and latency histogram of each (method, route, status), looked up
        # once: `labels()` checks and joins its values under a lock on every call. Bounded by
        # the routes, their methods and the statuses they answer.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = declared = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID:
                request_id = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
        if request_id is None or not _valid_request_id(request_id):
            if request_id is not None:
                logger.warning("Generated a new request ID: the header's value was not valid")
            request_id = uuid.uuid4().hex
            scope["headers"] = [
                *(h for h in scope["headers"] if h[0] != REQUEST_ID),
                (REQUEST_ID, request_id.encode()),
            ]
        correlation_id.set(request_id)
        header = (REQUEST_ID, request_id.encode())
        status = 500
        started = False
        path = scope["path"]
        limit = self.sizes._limit(path)
        received = 0

        async def edge_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        async def edge_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _too_large(edge_send, limit)
            elif (wait := self._wait(scope, path)) > 0:
                retry = str(max(1, math.ceil(wait)))
                await _problem(
                    edge_send,
                    429,
                    "rate-limited",
                    "Too many requests",
                    f"Rate limit of {self.limiter.rate:g} requests/s exceeded; retry after "
                    f"{retry} s",
                    [(b"retry-after", retry.encode())],
                )
            else:
                await self.app(scope, edge_receive, edge_send)
        except _TooLarge:
            if not started:
                await _too_large(edge_send, limit)
        finally:
            route: Any = scope.get("route")
            key = (scope["method"], getattr(route, "path", "unmatched"), status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = self._series_of(*key)
            series[0].inc()
            series[1].observe(time.perf_counter() - started_at)

    def _series_of(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        return (
            metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)),
            metrics.HTTP_LATENCY.labels(self.service, method, template),
        )

    def _wait(self, scope: Scope, path: str) -> float:
        """Seconds the client must wait (0: go ahead); health, metrics and docs never wait."""
        if self.limiter.rate <= 0 or path.startswith(EXEMPT_PREFIXES):
            return 0.0
        return self.limiter._take(_client_key(scope))


async def _too_large(send: Send, limit: int) -> None:
    await _problem(
        send,
        413,
        "payload-too-large",
        "Payload too large",
        f"The request body exceeds {limit} bytes",
    )
