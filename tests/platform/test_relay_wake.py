"""The outbox relay is woken in its own process by a commit that wrote events: no NOTIFY, and
no waiting for the polling interval."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.profiles.config import Settings
from services.profiles.main import create_app
from services.profiles.models import outbox
from shared.auth import issue_token
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import eventually, serve


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # Polling so rare that only a wake-up can explain a prompt publication.
    return create_app(Settings(outbox_poll_interval_s=60, rate_limit_per_s=0))


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for c in serve(app):
        c.headers.update(auth(issue_token(ServiceSettings(), "admin")))
        yield c


async def test_a_commit_with_events_wakes_the_relay_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await eventually(lambda: _idle(app), timeout=30)  # the start-up pass is over
    started = time.monotonic()
    response = await client.post(
        "/customers", json={"display_name": "Wake Up Ltd", "kind": "organisation"}
    )
    assert response.status_code == 201, response.text

    async def published() -> bool:
        async with app.state.engine.connect() as conn:
            at = await conn.scalar(
                sa.select(outbox.c.published_at).where(outbox.c.subject == response.json()["id"])
            )
        return at is not None

    await eventually(published, timeout=10, interval=0.05)
    assert time.monotonic() - started < 5, "published by polling, not by a wake-up"


async def _idle(app: FastAPI) -> bool:
    backlog, _ = await app.state.relay.backlog()
    return bool(backlog == 0)
