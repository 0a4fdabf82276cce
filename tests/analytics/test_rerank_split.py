"""The background re-rank's full run, computed in steps on two connections, writes exactly what
the single staging statement of the in-transaction re-rank writes: the same rows, the same
events."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from services.analytics.main import rerank_pool
from services.analytics.recompute import ALL_COLUMNS, rerank_concurrently
from shared.contracts.customers import CustomerMerged
from shared.db import create_engine
from shared.events.envelope import CloudEvent
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import (
    NOW,
    cancel,
    complaint_flow,
    created,
    days_ago,
    event,
    ids,
    interaction,
    purchase,
    refund,
    survey,
)


def _history(customers: list[uuid.UUID], rng: random.Random) -> list[CloudEvent]:
    """Every kind of customer the re-rank tells apart: prospects, one-time and repeat buyers,
    lapsed ones, refunds and cancellations, open and breached complaints, unhappy surveys,
    contacts, merged duplicates, and tied measures."""
    events: list[CloudEvent] = []
    for n, c in enumerate(customers):
        events.append(created(c))
        kind = n % 8
        if kind == 0:
            continue  # a prospect: no purchase
        count = {1: 1, 2: 2, 3: 5}.get(kind, rng.randint(1, 4))
        for _ in range(count):
            margin = str(rng.choice([10, 10, 25, rng.randint(1, 900)]))  # ties and a long tail
            age = rng.choice([3, 40, 100, 200, 300, 400]) if kind != 4 else rng.randint(150, 350)
            bought = uuid.uuid4()
            events.append(purchase(c, margin, at=days_ago(age), purchase_id=bought))
        if kind == 5:
            events.append(refund(c, bought, margin="5", amount="20"))
        if kind == 6:
            events.append(cancel(c, bought))
        if n % 5 == 0:
            events.extend(complaint_flow(c, days_ago(rng.randint(1, 60)), 60, None, fr_met=False))
        if n % 7 == 0:
            events.extend(complaint_flow(c, days_ago(20), 30, 3_600, rating=rng.randint(1, 5)))
        if n % 3 == 0:
            events.append(survey(c, {"overall": rng.randint(1, 5)}, nps=rng.randint(0, 10)))
        if n % 4 == 1:
            events.append(interaction(c, "phone", at=days_ago(rng.choice([1, 45, 120]))))
    for survivor, duplicate in zip(customers[1:9:2], customers[2:10:2], strict=True):
        merged = CustomerMerged(
            customer_id=survivor, occurred_at=days_ago(1), merged_customer_id=duplicate
        )
        events.append(event(merged))
    return events


async def _state(db: AnalyticsDb) -> tuple[list[Any], list[Any]]:
    columns = ", ".join(("customer_id", "merged_into", "facts_at", *ALL_COLUMNS))
    facts = await db.rows(f"SELECT {columns} FROM customer_facts ORDER BY customer_id")
    events = await db.rows("SELECT type, subject, data::text AS data FROM outbox")
    return [tuple(r) for r in facts], sorted((r.type, r.subject, r.data) for r in events)


async def test_the_full_run_in_steps_equals_the_single_statement(fresh_database: Any) -> None:
    rng = random.Random(13)
    customers = ids(120)
    first = _history(customers, rng)
    later = [purchase(c, "40", at=days_ago(1)) for c in rng.sample(customers, 15)]
    later += complaint_flow(customers[3], days_ago(1), 60, None)
    # Every run is a full one (the steps are the full run's): none builds on an earlier run.
    single, stepped = (
        AnalyticsDb(settings, create_engine(settings))
        for settings in [
            analytics_settings(await fresh_database("analytics"), rerank_full_every_s=0)
            for _ in range(2)
        ]
    )
    try:
        # Each re-rank some weeks after its batch: time alone moves lifecycle and churn risk
        # (a batch computes those of its own customers as of then).
        for batch, applied, ranked in ((first, 0, 30), (later, 30, 90)):
            await single.apply(batch, as_of=NOW + timedelta(days=applied))
            await stepped.apply(batch, as_of=NOW + timedelta(days=applied))
            await single.rerank(NOW + timedelta(days=ranked))
            as_of = NOW + timedelta(days=ranked)
            result = await rerank_concurrently(stepped.engine, stepped.settings, as_of)
            assert result is not None and result.lifecycle_events and result.churn_events

            facts, events = await _state(single)
            assert await _state(stepped) == (facts, events)

        # Not equal by being empty: the base spans the tiers, stages and risk levels.
        assert {row.tier for row in await single.rows("SELECT tier FROM customer_facts")} == {
            "A",
            "B",
            "C",
            None,
        }
        stages = await single.rows("SELECT DISTINCT lifecycle_stage FROM customer_facts")
        assert len(stages) >= 5
        levels = await single.rows("SELECT DISTINCT churn_level FROM customer_facts")
        assert {level for (level,) in levels} == {"low", "medium", "high", None}
        types = {t for t, _, _ in events}
        assert types == {
            "kehu.customer.tier_changed.v1",
            "kehu.customer.lifecycle_changed.v1",
            "kehu.customer.churn_risk_changed.v1",
        }
        assert len(events) > 2 * len(customers)  # the later run published changes too
    finally:
        await single.engine.dispose()
        await stepped.engine.dispose()


async def test_the_service_pool_holds_every_step_of_a_run(fresh_database: Any) -> None:
    """The service's re-rank runs on its own pool: a full run's stage takes two connections
    and the apply `rerank_apply_connections`; a pool of one made the step that needs a second
    wait for the run's own connection until the pool gave up, every time."""
    settings = analytics_settings(await fresh_database("analytics"), rerank_chunk=10)
    db = AnalyticsDb(settings, create_engine(rerank_pool(settings)))
    customers = ids(60)
    try:
        await db.apply([purchase(c, str(n + 1)) for n, c in enumerate(customers)])
        result = await rerank_concurrently(db.engine, settings, NOW)
        assert result is not None and result.tier_events == len(customers)  # six chunks
        tiers = await db.rows("SELECT tier, count(*) AS n FROM customer_facts GROUP BY tier")
        assert sum(r.n for r in tiers) == len(customers) and None not in {r.tier for r in tiers}
    finally:
        await db.engine.dispose()
