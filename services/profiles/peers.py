"""Calls to the other services for the cross-service GDPR export and erasure report.

Each peer is asked with a short-lived admin service token (subject `profiles`) and a timeout.
A peer answers with the shared GDPR documents (`shared.gdpr`): a `GdprDocument` whose status is
`ok` or `holds_nothing`, an `ErasureReport` whose status is `erased`, `pending` or
`holds_nothing`. Anything else is said as it is: `unavailable` when it cannot be reached or is
too slow, `error` for an HTTP error (a 404 means the route is missing, never "holds nothing"
or "erased") or an answer that is not such a document. The caller's request still succeeds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_correlation_id import correlation_id
from pydantic import ValidationError

from services.profiles.config import Settings
from services.profiles.schemas import ServiceErasure, ServiceSection
from shared.auth import issue_token
from shared.gdpr import ErasureReport, GdprDocument


@dataclass
class Answer:
    """What one peer said: its JSON body, or why there is none."""

    service: str
    status: str  # "answered", "unavailable" or "error"
    http_status: int | None = None
    detail: str | None = None
    body: Any = None


async def ask(client: httpx.AsyncClient, service: str, base_url: str, path: str) -> Answer:
    try:
        response = await client.get(base_url.rstrip("/") + path)
    except httpx.TimeoutException:
        return Answer(service, "unavailable", detail="timed out")
    except httpx.HTTPError as exc:
        return Answer(service, "unavailable", detail=f"unreachable: {type(exc).__name__}")
    code = response.status_code
    if code == 404:
        return Answer(service, "error", code, f"{path} answered 404: the route is missing")
    if code >= 400:
        return Answer(service, "error", code, response.text[:500])
    try:
        return Answer(service, "answered", code, body=response.json())
    except ValueError:
        return Answer(service, "error", code, "not JSON")


async def ask_all(settings: Settings, path: str) -> list[Answer]:
    """GET `path` from every configured peer at once."""
    token = issue_token(settings, "admin", subject="profiles", ttl_s=300)
    headers = {"Authorization": f"Bearer {token}"}
    if (request_id := correlation_id.get()) is not None:
        headers["X-Request-ID"] = request_id
    timeout = httpx.Timeout(settings.peer_timeout_s)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as client:
        return list(
            await asyncio.gather(
                *(ask(client, name, url, path) for name, url in settings.peers().items())
            )
        )


def export_section(answer: Answer) -> ServiceSection:
    """A peer's section of the export: its `GdprDocument`, or why there is none."""
    if answer.status != "answered":
        return ServiceSection(
            service=answer.service,
            status="error" if answer.status == "error" else "unavailable",
            http_status=answer.http_status,
            detail=answer.detail,
        )
    try:
        document = GdprDocument.model_validate(answer.body)
    except ValidationError:
        return ServiceSection(
            service=answer.service,
            status="error",
            http_status=answer.http_status,
            detail="the answer is not a GDPR document (service, customer_id, status, data)",
        )
    return ServiceSection(
        service=answer.service,
        status=document.status,
        http_status=answer.http_status,
        data=document,
    )


def erasure_section(answer: Answer) -> ServiceErasure:
    """A peer's erasure state from its `ErasureReport`; anything else is not erased."""
    if answer.status == "answered":
        try:
            report = ErasureReport.model_validate(answer.body)
        except ValidationError:
            answer = Answer(
                answer.service,
                "error",
                answer.http_status,
                "the answer is not an erasure report (service, customer_id, status)",
            )
        else:
            return ServiceErasure(
                service=answer.service,
                status=report.status,
                erased=report.status in ("erased", "holds_nothing"),
                erased_at=report.erased_at,
                kept=report.kept,
                http_status=answer.http_status,
            )
    return ServiceErasure(
        service=answer.service,
        status="error" if answer.status == "error" else "unavailable",
        erased=False,
        http_status=answer.http_status,
        detail=answer.detail,
    )
