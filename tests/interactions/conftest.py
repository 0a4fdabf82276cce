"""One running interactions app for the folder: its consumer group joins once (~5 s on Tansu)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from services.interactions.config import Settings
from services.interactions.main import create_app
from tests.helpers import serve


def fast_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "outbox_poll_interval_s": 0.2,
        "overdue_interval_s": 0.2,
        "revisit_interval_s": 0.2,
        "consumer_batch_size": 100,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app() -> AsyncIterator[FastAPI]:
    application = create_app(fast_settings())
    async for client in serve(application):
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: FastAPI) -> httpx.AsyncClient:
    test_client: httpx.AsyncClient = app.state.test_client
    return test_client


@pytest.fixture
def admin(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('admin')}"}
