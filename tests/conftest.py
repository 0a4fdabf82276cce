"""Fixtures of the integration tests (the real PostgreSQL and broker started by `make test`),
and the collection order of every folder under tests/.

The stack is needed only by what is collected outside tests/unit: `make unit` runs without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from shared.migrate import alembic_config, ensure_database
from shared.settings import ServiceSettings

TESTS = Path(__file__).parent
UNIT = TESTS / "unit"
# Every folder under tests/ is collected (`testpaths = ["tests"]`); only the order is set here.
# The unit tests go first (they fail fastest). The webhook tests run before the rest, ahead of
# the backlog other tests (a 10,000-row import among them) leave every consumer on the one
# shared broker, which their timing would wait behind. The outreach and console suites run a
# package-long stack of in-process services whose consumers keep their group memberships on the
# shared broker after the package (other tests' consumers of those groups then get no
# partitions), so they go after every other suite; the fault suite restarts infrastructure and
# goes after them, and the replica suite (its own broker, and a service with two worker
# processes on the shared one) last. Any other folder runs in between, alphabetically.
FIRST = ("unit", "subscriptions", "platform")
LAST = ("outreach", "console", "chaos", "replicas")


def _folder_rank(item: pytest.Item) -> tuple[int, str]:
    folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
    if folder in FIRST:
        return FIRST.index(folder), ""
    if folder in LAST:
        return len(FIRST) + 1 + LAST.index(folder), ""
    return len(FIRST), folder


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the folders, and refuse to run integration tests without the stack."""
    items.sort(key=_folder_rank)  # stable: the order inside a folder is kept
    needs_stack = any(not item.path.is_relative_to(UNIT) for item in items)
    has_stack = os.environ.get("DATABASE_URL") and os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if needs_stack and not has_stack and not config.option.collectonly:
        raise pytest.UsageError(
            "Integration tests need the stack: run them with `make test`, which starts "
            "PostgreSQL and the broker and sets DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS. "
            "`make unit` (pytest tests/unit) runs the tests that need neither."
        )


def server_url(database: str) -> str:
    url = make_url(os.environ["DATABASE_URL"]).set(database=database)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def scratch_database(service: str) -> AsyncIterator[str]:
    """A new database migrated with `service`'s history, for a fixture wider than one test
    (other suites share the service's default database); dropped afterwards."""
    name = f"kehu_t_{uuid.uuid4().hex[:12]}"
    url = server_url(name)
    await ensure_database(url)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(service, url), "head")
        yield url
    finally:
        admin = make_url(os.environ["DATABASE_URL"]).set(
            drivername="postgresql", database="postgres"
        )
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


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
