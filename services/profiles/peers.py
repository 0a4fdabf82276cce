"""Calls to the other services for the cross-service GDPR export and erasure status.

Each peer is asked with a short-lived admin service token (subject `profiles`) and a timeout;
a peer that is down, slow or failing becomes a section saying so, never an error of the caller.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
from asgi_correlation_id import correlation_id

from services.profiles.config import Settings
from services.profiles.schemas import ServiceErasure, ServiceSection
from shared.auth import issue_token


async def fetch(
    client: httpx.AsyncClient, service: str, base_url: str, path: str
) -> ServiceSection:
    try:
        response = await client.get(base_url.rstrip("/") + path)
    except httpx.TimeoutException:
        return ServiceSection(service=service, status="unavailable", detail="timed out")
    except httpx.HTTPError as exc:
        return ServiceSection(
            service=service, status="unavailable", detail=f"unreachable: {type(exc).__name__}"
        )
    if response.status_code == 404:
        return ServiceSection(
            service=service, status="not_found", http_status=404, detail="holds no such customer"
        )
    if response.status_code >= 400:
        return ServiceSection(
            service=service,
            status="error",
            http_status=response.status_code,
            detail=response.text[:500],
        )
    try:
        data = response.json()
    except ValueError:
        return ServiceSection(
            service=service, status="error", http_status=response.status_code, detail="not JSON"
        )
    return ServiceSection(service=service, status="ok", http_status=response.status_code, data=data)


async def fetch_all(settings: Settings, path: str) -> list[ServiceSection]:
    """GET `path` from every peer at once."""
    token = issue_token(settings, "admin", subject="profiles", ttl_s=300)
    headers = {"Authorization": f"Bearer {token}"}
    if (request_id := correlation_id.get()) is not None:
        headers["X-Request-ID"] = request_id
    timeout = httpx.Timeout(settings.peer_timeout_s)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as client:
        return list(
            await asyncio.gather(
                *(fetch(client, name, url, path) for name, url in settings.peers().items())
            )
        )


def erasure_of(section: ServiceSection) -> ServiceErasure:
    """A peer's erasure status (`{"service", "erased", "erased_at"}`) from its section."""
    data: Any = section.data if isinstance(section.data, dict) else {}
    erased_at = data.get("erased_at")
    if section.status == "ok" and isinstance(data.get("erased"), bool):
        return ServiceErasure(
            service=section.service,
            status="ok",
            erased=data["erased"],
            erased_at=datetime.fromisoformat(erased_at) if isinstance(erased_at, str) else None,
        )
    if section.status == "not_found":  # holds nothing about the customer: nothing to erase
        return ServiceErasure(service=section.service, status="not_found", erased=True)
    return ServiceErasure(
        service=section.service,
        status="error" if section.status == "ok" else section.status,
        erased=False,
        detail=section.detail or "answer without an `erased` flag",
    )
