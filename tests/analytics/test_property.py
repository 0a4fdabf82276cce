"""The SQL ABC ranking agrees with the pure reference (its properties: tests/unit)."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import sqlalchemy as sa

from services.analytics.metrics_sql import Clock, rank_abc
from services.analytics.tiering import abc_tiers
from shared.db import session_factory
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import NOW


async def test_sql_ranking_equals_the_reference_on_random_populations(
    analytics_db: AnalyticsDb,
) -> None:
    rng = random.Random(20261123)
    sessions = session_factory(analytics_db.engine)
    for case in range(25):
        size = rng.randint(1, 60)
        values = {
            uuid.uuid4(): Decimal(rng.choice([rng.randint(-300, 3000), 0, 100, 100])) / 4
            for _ in range(size)
        }
        async with sessions.begin() as session:
            await session.execute(sa.text("TRUNCATE customer_facts"))
            await session.execute(
                sa.text("INSERT INTO customer_facts (customer_id, contribution) VALUES (:c, :v)"),
                [{"c": k, "v": v} for k, v in values.items()],
            )
            await rank_abc(session, Clock.at(NOW, analytics_db.settings), analytics_db.settings)
        rows = await analytics_db.rows("SELECT customer_id, tier FROM customer_facts")
        assert {r.customer_id: r.tier for r in rows} == abc_tiers(values), f"case {case}"
