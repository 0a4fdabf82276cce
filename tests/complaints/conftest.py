"""Apps, factories and event readers for the complaints tests (real PostgreSQL and broker)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.complaints.config import SEVERITIES, TIERS, Settings
from services.complaints.main import create_app, sla_pass
from services.complaints.models import outbox
from shared.auth import issue_token
from shared.context import ManualClock
from shared.settings import ServiceSettings
from tests.helpers import serve

FAST = {"outbox_poll_interval_s": 0.2, "sla_scheduler_interval_s": 0.2}


def headers(role: str = "admin", subject: str = "tester") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(ServiceSettings(), role, subject=subject)}"}


ADMIN = headers()


def matrix(first_response_s: int, resolution_s: int, a_factor: float = 1.0) -> dict[str, Any]:
    """A uniform severity × tier matrix; A-tier targets scaled by `a_factor`."""
    return {
        severity: {
            tier: {
                "first_response_s": max(
                    1, int(first_response_s * (a_factor if tier == "A" else 1))
                ),
                "resolution_s": max(1, int(resolution_s * (a_factor if tier == "A" else 1))),
            }
            for tier in TIERS
        }
        for severity in SEVERITIES
    }


def make_app(**overrides: Any) -> FastAPI:
    """An app without consumers (one shared app consumes; see `consuming`)."""
    return create_app(Settings(**{**FAST, "consumers_enabled": False, **overrides}))


def clocked(**overrides: Any) -> tuple[FastAPI, ManualClock]:
    """An app (see `make_app`) whose time moves only when the test moves its clock."""
    app = make_app(**overrides)
    app.state.clock = clock = ManualClock()
    return app, clock


async def check_sla(app: FastAPI) -> int:
    """One pass of the app's SLA scheduler, now, at its clock's time."""
    async with app.state.sessions.begin() as session:
        return await sla_pass(app, session)


@pytest.fixture(scope="session")
async def consuming() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The one app of the run that consumes (group `complaints`), with default SLA targets."""
    app = create_app(Settings(**FAST))
    async for client in serve(app):
        yield app, client


@pytest.fixture
async def client(consuming: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return consuming[1]


@pytest.fixture
async def app(consuming: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return consuming[0]


def complaint_body(customer_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "customer_id": str(customer_id or uuid.uuid4()),
        "channel": "email",
        "complainant": {
            "name": f"Maija {suffix}",
            "email": f"maija.{suffix}@example.com",
            "phone": "+358 40 123 4567",
        },
        "subject": f"Parcel arrived damaged {suffix}",
        "description": "The box was crushed and the vase broken.",
        "category": "delivery",
        "severity": "medium",
        **overrides,
    }


async def file_complaint(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/complaints", json=complaint_body(**overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def move(
    client: httpx.AsyncClient, complaint_id: str, to_status: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/complaints/{complaint_id}/transitions",
        json={"to_status": to_status, **extra},
        headers=ADMIN,
    )


async def walk(client: httpx.AsyncClient, complaint_id: str, *statuses: str) -> dict[str, Any]:
    """Move through `statuses` in order, supplying what resolving and closing need."""
    body: dict[str, Any] = {}
    for to_status in statuses:
        extra: dict[str, Any] = {}
        if to_status == "resolved":
            extra["resolution"] = "Replacement sent"
        if to_status == "closed":
            extra["revisit_outcome"] = "satisfied"
        response = await move(client, complaint_id, to_status, **extra)
        assert response.status_code == 200, response.text
        body = response.json()
    return body


async def events_of(app: FastAPI, complaint_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type without prefix/version, data) of the complaint's events in the outbox, in order."""
    async with app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbox.c.type, outbox.c.data)
                .where(outbox.c.data["complaint_id"].astext == complaint_id)
                .order_by(outbox.c.id)
            )
        ).all()
    return [(row.type.removeprefix("kehu.").rsplit(".", 1)[0], row.data) for row in rows]


async def event_types(app: FastAPI, complaint_id: str) -> list[str]:
    return [t for t, _ in await events_of(app, complaint_id)]
