"""Fixtures shared by every test: the real PostgreSQL and broker started by `make test`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from shared.migrate import alembic_config, ensure_database
from shared.settings import ServiceSettings

if not os.environ.get("DATABASE_URL") or not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
    raise pytest.UsageError(
        "Run the suite with `make test`: it starts PostgreSQL and the broker and sets "
        "DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS."
    )


def server_url(database: str) -> str:
    url = make_url(os.environ["DATABASE_URL"]).set(database=database)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@pytest.fixture
async def fresh_database() -> AsyncIterator[Callable[[str], str]]:
    """Factory: a new empty database migrated with a service's history; dropped afterwards."""
    created: list[str] = []

    def make(service: str) -> str:
        name = f"kehu_t_{uuid.uuid4().hex[:12]}"
        url = server_url(name)
        created.append(name)
        return url

    async def migrate(service: str) -> str:
        url = make(service)
        await ensure_database(url)
        import asyncio

        await asyncio.to_thread(command.upgrade, alembic_config(service, url), "head")
        return url

    yield migrate  # type: ignore[misc]
    admin = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def settings_for(database_url: str, **overrides: object) -> ServiceSettings:
    return ServiceSettings(service_database_url=database_url, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def token() -> Callable[..., str]:
    """Factory: a bearer token for a role, signed with the test stack's secret."""
    from shared.auth import issue_token

    def make(role: str = "admin", **claims: object) -> str:
        return issue_token(ServiceSettings(), role, **claims)

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
