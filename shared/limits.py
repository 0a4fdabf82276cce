"""Abuse limits: request body size and per-client rate limiting, both answering problem+json.

The rate limiter is a token bucket per client (the bearer token's subject, else the client
address), kept in each replica's memory: with N replicas a client gets up to N x the rate, which
is the usual trade for needing no shared store. Health, metrics and docs are never limited.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.problems import PROBLEM_BASE, PROBLEM_JSON

EXEMPT_PREFIXES = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")


async def _problem(
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Refuse bodies over `max_bytes` (per path prefix overrides) with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))

    def _limit(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _problem(
                send,
                413,
                "payload-too-large",
                "Payload too large",
                f"The request body exceeds {limit} bytes",
            )
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _problem(
                    send,
                    413,
                    "payload-too-large",
                    "Payload too large",
                    f"The request body exceeds {limit} bytes",
                )


class _TooLarge(Exception):
    pass


def _client_key(scope: Scope) -> str:
    auth = dict(scope["headers"]).get(b"authorization", b"").decode(errors="ignore")
    if auth.lower().startswith("bearer ") and auth.count(".") == 2:
        try:  # unverified: only to tell clients apart; auth itself is checked later
            payload = auth.split(".")[1]
            claims: Any = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
        except (ValueError, RecursionError):  # not base64, not JSON, too deep, huge numbers
            claims = None
        # Any JSON parses; only an object has claims.
        if isinstance(claims, dict):
            return f"sub:{claims.get('sub')}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    """Token bucket per client: `rate` requests per second with bursts up to `burst`."""

    def __init__(self, app: ASGIApp, rate: float, burst: int, max_clients: int = 10_000):
        self.app = app
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _take(self, key: str) -> float:
        """0 when allowed, else seconds until a token is available."""
        now = time.monotonic()
        tokens, updated = self.buckets.pop(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self.buckets[key] = (tokens, now)
        if len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        wait = self._take(_client_key(scope))
        if wait:
            retry = str(max(1, math.ceil(wait)))
            await _problem(
                send,
                429,
                "rate-limited",
                "Too many requests",
                f"Rate limit of {self.rate:g} requests/s exceeded; retry after {retry} s",
                [(b"retry-after", retry.encode())],
            )
            return
        await self.app(scope, receive, send)
