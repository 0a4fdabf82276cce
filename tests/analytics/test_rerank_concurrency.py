"""The background re-rank never stalls the consumer: batches are applied while it runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import sqlalchemy as sa

from services.analytics.models import inbox
from services.analytics.projection import EVENT_TYPES, handle_batch
from services.analytics.recompute import rerank_concurrently
from shared.consumer import ConsumerRunner
from shared.db import create_engine
from shared.events.envelope import to_kafka
from shared.kafka import ensure_topics
from tests.analytics.conftest import analytics_settings
from tests.analytics.factories import purchase
from tests.analytics.test_pipeline import produce
from tests.helpers import eventually

BASE = 60_000


async def _load_base(engine: Any, size: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
        await conn.execute(
            sa.text(
                "INSERT INTO customer_facts (customer_id, profile_known) "
                "SELECT gen_random_uuid(), true FROM generate_series(1, :n)"
            ),
            {"n": size},
        )
        await conn.execute(
            sa.text(
                """
                INSERT INTO purchases (purchase_id, customer_id, amount, cost, margin,
                                       currency, reporting_amount, reporting_margin, status,
                                       occurred_at)
                SELECT gen_random_uuid(), customer_id, m * 3, m * 2, m, 'CNY', m * 3, m, 'paid',
                       now() - random() * interval '300 days'
                FROM (SELECT customer_id, round((1 + random() * 500)::numeric, 2) AS m
                      FROM customer_facts, generate_series(1, 2)) s
                """
            )
        )
        await conn.execute(sa.text("ANALYZE"))


async def test_batches_are_applied_while_a_rerank_of_a_large_base_runs(
    fresh_database: Any,
) -> None:
    settings = analytics_settings(
        await fresh_database("analytics"), rerank_chunk=1_000, incremental_max_batch=500
    )
    topic = settings.consumed_topics[0]
    await ensure_topics(settings, [topic])
    engine = create_engine(settings)
    rerank_engine = create_engine(settings.model_copy(update={"db_statement_timeout_ms": 600_000}))
    await _load_base(engine, BASE)
    async with engine.connect() as conn:
        # The last customer in id order: its chunk is applied at the very end of the run.
        late = (
            await conn.execute(
                sa.text("SELECT customer_id FROM customer_facts ORDER BY customer_id DESC LIMIT 1")
            )
        ).scalar_one()

    async def batch(session: Any, events: list[Any]) -> None:
        await handle_batch(session, events, settings, incremental=True)

    runner = ConsumerRunner(
        settings,
        engine,
        inbox,
        settings.consumer_group,
        [topic],
        {},
        batch_handler=batch,
        batch_types=EVENT_TYPES,
    )
    runner.start()
    try:

        async def connected() -> bool:
            return runner.consumer is not None

        await eventually(connected, timeout=30)
        consumer_before = runner.consumer

        task = asyncio.create_task(rerank_concurrently(rerank_engine, settings))

        async def applying() -> bool:  # the first chunks committed: the run is under way
            async with engine.connect() as conn:
                n = await conn.scalar(sa.text("SELECT count(*) FROM outbox"))
            return bool(n) or task.done()

        await eventually(applying, timeout=120, interval=0.05)
        assert not task.done(), "the re-rank ended before the test could publish"

        newcomers = [uuid.uuid4() for _ in range(20)]
        events = [purchase(c, "7") for c in newcomers] + [purchase(late, "1000", amount="9000")]
        await produce(topic, [to_kafka(e) for e in events])
        published_at = time.monotonic()

        async def applied() -> bool:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT customer_id, purchase_count FROM customer_facts "
                        "WHERE customer_id = ANY(:ids)"
                    ),
                    {"ids": [*newcomers, late]},
                )
                counts = {r.customer_id: r.purchase_count for r in rows}
            return all(counts.get(c) == 1 for c in newcomers) and counts.get(late) == 3

        await eventually(applied, timeout=60, interval=0.05)
        applied_at = time.monotonic()
        rerank_running_when_applied = not task.done()
        result = await task
        ended_at = time.monotonic()

        assert rerank_running_when_applied, "the batch waited for the re-rank to end"
        assert applied_at < ended_at
        print(
            f"applied {applied_at - published_at:.2f}s after publishing; re-rank ended "
            f"{ended_at - applied_at:.2f}s later ({result and result.duration_ms} ms in all)"
        )
        # No failed batch, no rejoin: the same Kafka clients throughout, no error recorded.
        assert runner.last_error is None
        assert runner.consumer is consumer_before
        assert result is not None and result.tier_events >= BASE

        # The batch's facts for a customer it touched mid-run were not overwritten by the
        # re-rank's older snapshot, and the customer still got its global ranks.
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT purchase_count, contribution, tier, rfm_r FROM customer_facts "
                        "WHERE customer_id = :c"
                    ),
                    {"c": late},
                )
            ).one()
        assert row.purchase_count == 3
        assert row.contribution > 1000
        assert row.tier is not None and row.rfm_r is not None
    finally:
        await runner.stop()
        await engine.dispose()
        await rerank_engine.dispose()
