"""The console's only way to data: the other services' public APIs, called with the signed-in
user's own token, so every scope check, mask and audit entry is the APIs' own."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from services.console.config import Settings

logger = logging.getLogger("kehu.console")

SERVICES = ("profiles", "interactions", "complaints", "analytics", "loyalty")


@dataclass(frozen=True)
class Answer:
    """One API answer; `status` is None when the service could not be reached."""

    status: int | None
    body: Any = None
    etag: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def missing(self) -> bool:
        """The service or route is not there (yet): unreachable, 404, 502-504."""
        return self.status is None or self.status in (404, 502, 503, 504)

    @property
    def detail(self) -> str:
        """What went wrong, as the API's problem document says it."""
        if isinstance(self.body, Mapping):
            return str(self.body.get("detail") or self.body.get("title") or "")
        return "" if self.status is None else f"HTTP {self.status}"


class SignedOut(Exception):
    """An API refused the user's token (expired or revoked): the session is over."""


class Upstream:
    """One pooled HTTP client for every API; each call carries the caller's bearer token."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.urls = {name: getattr(settings, f"{name}_url").rstrip("/") for name in SERVICES}
        self.client = httpx.AsyncClient(
            timeout=settings.upstream_timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        request_headers.update(headers or {})
        try:
            response = await self.client.request(
                method,
                self.urls[service] + path,
                params=params,
                json=json,
                headers=request_headers,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            logger.warning("%s %s%s timed out: %r", method, service, path, exc)
            return Answer(None, timed_out=True)
        except httpx.TransportError as exc:
            logger.warning("%s %s%s unreachable: %s", method, service, path, exc)
            return Answer(None)
        if response.status_code == 401:
            raise SignedOut(f"{service} refused the token")
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return Answer(response.status_code, body, response.headers.get("etag"))

    async def get(self, service: str, path: str, token: str, **kwargs: Any) -> Answer:
        return await self.call("GET", service, path, token, **kwargs)

    async def post(self, service: str, path: str, token: str, **kwargs: Any) -> Answer:
        return await self.call("POST", service, path, token, **kwargs)
