"""Analytics fixtures: a fresh, migrated analytics database per test (metrics are global)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.analytics.config import Settings
from services.analytics.main import create_app
from services.analytics.projection import handle_batch
from services.analytics.recompute import RerankResult, rerank
from shared.db import create_engine, session_factory
from shared.events.envelope import CloudEvent
from tests.analytics.factories import NOW
from tests.helpers import serve, unique_topic


@dataclass
class AnalyticsDb:
    settings: Settings
    engine: AsyncEngine

    async def apply(self, *batches: list[CloudEvent], as_of: datetime = NOW) -> None:
        """Each list is one consumer batch, in its own transaction."""
        for batch in batches:
            async with session_factory(self.engine).begin() as session:
                await handle_batch(session, batch, self.settings, as_of=as_of)

    async def rerank(self, as_of: datetime = NOW) -> RerankResult:
        async with session_factory(self.engine).begin() as session:
            return await rerank(session, self.settings, as_of)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def facts(self) -> dict[Any, Any]:
        return {r.customer_id: r for r in await self.rows("SELECT * FROM customer_facts")}

    async def events(self, type_suffix: str) -> list[dict[str, Any]]:
        rows = await self.rows(
            "SELECT data FROM outbox WHERE type = :t ORDER BY id",
            t=f"kehu.customer.{type_suffix}.v1",
        )
        return [r.data for r in rows]


def analytics_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "service_database_url": url,
        "consumed_topics": [unique_topic()],
        "consumer_group": f"analytics-{unique_topic()}",
        "outbox_poll_interval_s": 0.2,
        "rerank_debounce_s": 0.2,
        "rerank_poll_s": 0.2,
        "catchup_every_s": 0,  # no source feeds here unless a test serves them
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def analytics_db(fresh_database: Any) -> AsyncIterator[AnalyticsDb]:
    url = await fresh_database("analytics")
    settings = analytics_settings(url)
    engine = create_engine(settings)
    yield AnalyticsDb(settings, engine)
    await engine.dispose()


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    return analytics_settings


@pytest.fixture
async def client(analytics_db: AnalyticsDb) -> AsyncIterator[httpx.AsyncClient]:
    # Re-ranks only when a test asks: the data is applied at NOW by the tests themselves.
    analytics_db.settings.rerank_every_s = 86_400
    analytics_db.settings.rerank_debounce_s = 3_600
    analytics_db.settings.rerank_max_delay_s = 3_600
    analytics_db.settings.consumer_enabled = False
    async for c in serve(create_app(analytics_db.settings)):
        yield c
