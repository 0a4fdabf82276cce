"""Fixtures of the profiles tests: one running app (relay and consumer) for the whole session.

Starting the app once keeps the run short (the consumer group joins once) and lets its
consumer settle before shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles.config import Settings
from services.profiles.main import create_app
from tests.conftest import auth
from tests.helpers import serve


@pytest.fixture(scope="session")
def app() -> FastAPI:
    # One test subject makes all requests: rate limiting would only make the run flaky.
    return create_app(Settings(outbox_poll_interval_s=0.2, rate_limit_per_s=0))


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for c in serve(app):
        yield c


@pytest.fixture
def admin(token: Callable[..., str]) -> dict[str, str]:
    return auth(token("admin", subject="admin-tester"))


@pytest.fixture
def session_of(app: FastAPI) -> Callable[[], Any]:
    """A session on the service database (inside a running app), committed on exit."""

    def make() -> Any:
        sessions = app.state.sessions
        return sessions.begin()

    return make


async def scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    return (await session.execute(text(sql), params)).scalar()
