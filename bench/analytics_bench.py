"""Analytics benchmarks: consumer drain rate against raw consume, and tier recompute time.

    .venv/bin/python -m bench.analytics_bench [--events 50000] [--sizes 100000,1000000]

Starts its own embedded PostgreSQL and Tansu broker unless DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS are set; prints the figures as JSON and writes them to
bench/analytics_report.json. Reported, not asserted: the machine is noisy, so compare the
ratio of figures taken in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from sqlalchemy.engine import make_url

from shared.devstack import ROOT, infrastructure

REPORT = ROOT / "bench" / "analytics_report.json"


def _events(n: int) -> list[Any]:
    from shared.contracts import customers as pc
    from shared.contracts import interactions as ic
    from shared.outbox import build_event

    customers = [uuid.uuid4() for _ in range(max(1, n // 10))]
    now = datetime.now(UTC)
    events = [
        build_event(
            pc.CustomerCreated(
                customer_id=c,
                occurred_at=now - timedelta(days=400),
                dimensions=pc.CustomerDimensions(kind="person", customer_number=c.hex[:8]),
            ),
            "/kehu/profiles",
        )
        for c in customers
    ]
    rng = random.Random(1)
    while len(events) < n:
        margin = Decimal(int(rng.paretovariate(1.2) * 1000)) / 100
        events.append(
            build_event(
                ic.PurchaseRecorded(
                    customer_id=rng.choice(customers),
                    occurred_at=now - timedelta(days=rng.uniform(0, 360)),
                    purchase_id=uuid.uuid4(),
                    external_ref="B",
                    amount=margin * 3,
                    cost=margin * 2,
                    margin=margin,
                    currency="CNY",
                    status="paid",
                ),
                "/kehu/interactions",
            )
        )
    return events


async def _fresh_database(name: str) -> str:
    from alembic import command

    from shared.migrate import alembic_config, ensure_database

    url = make_url(os.environ["DATABASE_URL"]).set(database=name, drivername="postgresql+asyncpg")
    rendered = url.render_as_string(hide_password=False)
    await ensure_database(rendered)
    await asyncio.to_thread(command.upgrade, alembic_config("analytics", rendered), "head")
    return rendered


async def bench_drain(n: int) -> dict[str, Any]:
    """Raw getmany rate of a topic, then the analytics batch consumer draining the same topic."""
    from services.analytics.config import Settings
    from services.analytics.models import inbox
    from services.analytics.projection import EVENT_TYPES, handle_batch, validate_ahead
    from shared.app import settle_heap
    from shared.consumer import ConsumerRunner
    from shared.db import create_engine
    from shared.events.envelope import to_kafka
    from shared.kafka import ensure_topics, new_producer

    topic = f"kehu.bench.{uuid.uuid4().hex[:8]}"
    url = await _fresh_database(f"kehu_bench_drain_{uuid.uuid4().hex[:6]}")
    settings = Settings(service_database_url=url)
    await ensure_topics(settings, [topic])
    producer = new_producer(settings)
    await producer.start()
    try:
        futures = []
        for event in _events(n):
            key, value, headers = to_kafka(event)
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            got = sum(len(v) for v in batch.values())
            if got and started is None:
                started = time.perf_counter()
                first = got
            seen += got
        assert started is not None
        raw_rate = (seen - first) / max(time.perf_counter() - started, 1e-9)
    finally:
        await consumer.stop()

    engine = create_engine(settings)

    async def batch(session: Any, events: list[Any]) -> None:
        incremental = len(events) <= settings.incremental_max_batch
        await handle_batch(session, events, settings, incremental=incremental)

    runner = ConsumerRunner(
        settings,
        engine,
        inbox,
        f"analytics-bench-{uuid.uuid4().hex[:6]}",
        [topic],
        {},
        batch_handler=batch,
        batch_types=EVENT_TYPES,
        raw_data=True,
        prepare=validate_ahead,
    )
    settle_heap()  # as the analytics service does once it has started
    runner.start()
    try:
        first_at: float | None = None
        first_count = 0
        deadline = time.monotonic() + 600
        while runner.processed_total < n and time.monotonic() < deadline:
            if first_at is None and runner.processed_total:
                first_at, first_count = time.perf_counter(), runner.processed_total
                first_cpu = time.process_time()
            await asyncio.sleep(0.02)
        assert first_at is not None
        drained = runner.processed_total - first_count
        drain_rate = drained / (time.perf_counter() - first_at)
        # This process's CPU over the same span (the consumer, and this loop's cheap polling):
        # the Python work per event, whatever the other processes on the machine do to the rate.
        cpu_us = (time.process_time() - first_cpu) / max(drained, 1) * 1e6
    finally:
        await runner.stop()
        await engine.dispose()
    return {
        "events": n,
        "raw_consume_events_per_s": round(raw_rate),
        "analytics_drain_events_per_s": round(drain_rate),
        "ratio": round(drain_rate / raw_rate, 3),
        "python_cpu_us_per_event": round(cpu_us, 1),
        "target_events_per_s": 25_000,
    }


async def fill_customers(conn: Any, customers: int, purchases_per_customer: int) -> None:
    """`customers` known customers with `purchases_per_customer` paid purchases each in the last
    360 days, their margins Pareto-like (a few customers carry most of the profit)."""
    await conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
    await conn.execute(
        sa.text(
            "INSERT INTO customer_facts (customer_id, profile_known) "
            "SELECT gen_random_uuid(), true FROM generate_series(1, :n)"
        ),
        {"n": customers},
    )
    await conn.execute(
        sa.text(
            """
            INSERT INTO purchases (purchase_id, customer_id, amount, cost, margin,
                                   currency, reporting_amount, reporting_margin,
                                   status, occurred_at)
            SELECT gen_random_uuid(), customer_id, m * 3, m * 2, m, 'CNY', m * 3, m,
                   'paid', now() - random() * interval '360 days'
            FROM (SELECT customer_id,
                         round((10 / power(1 - random() * 0.999, 1 / 1.2))::numeric, 2) AS m
                  FROM customer_facts, generate_series(1, :k)) s
            """
        ),
        {"k": purchases_per_customer},
    )


async def bench_recompute(size: int, purchases_per_customer: int = 2) -> dict[str, Any]:
    """Global re-rank (facts, lifecycle, churn, ABC, RFM) over `size` customers, in SQL."""
    from services.analytics.config import Settings
    from shared.db import create_engine

    url = await _fresh_database(f"kehu_bench_tiers_{size}_{uuid.uuid4().hex[:6]}")
    settings = Settings(service_database_url=url, db_statement_timeout_ms=3_600_000)
    engine = create_engine(settings)
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            await fill_customers(conn, size, purchases_per_customer)
        # As a base filled over time is left by autovacuum and the checkpointer: hint bits
        # set, pages all-visible, statistics current, the fill's pages and WAL flushed.
        # Straight after a bulk insert, the first re-rank's own scans set the hint bits of
        # 3,000,000 fresh rows (dirtying and writing every page again) while autovacuum
        # worked through the same tables beside it, and it paid for the fill's checkpoint.
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(sa.text("VACUUM (ANALYZE)"))
            await autocommit.execute(sa.text("CHECKPOINT"))
        load_s = time.perf_counter() - started

        first = await _rerank_with_batches(engine, settings, sample=False)
        async with engine.begin() as conn:  # 1% of customers buy again
            await conn.execute(
                sa.text(
                    """
                    INSERT INTO purchases (purchase_id, customer_id, amount, cost, margin,
                                           currency, reporting_amount, reporting_margin,
                                           status, occurred_at)
                    SELECT gen_random_uuid(), customer_id, 300, 200, 100, 'CNY', 300, 100,
                           'paid', now()
                    FROM customer_facts TABLESAMPLE BERNOULLI (1)
                    """
                )
            )
        steady = await _rerank_with_batches(engine, settings, sample=True)
    finally:
        await engine.dispose()
    return {
        "customers": size,
        "purchases": size * purchases_per_customer,
        "load_s": round(load_s, 1),
        "first_rerank_s": first["seconds"],
        "first_rerank_tier_events": first["tier_events"],
        "first_rerank_stage_s": first["stage_s"],
        "steady_rerank_s": steady["seconds"],
        "steady_rerank_tier_events": steady["tier_events"],
        "steady_rerank_staged": steady["staged"],
        "steady_rerank_stage_s": steady["stage_s"],
        "batches_during_steady_rerank": steady["batches"],
        "events_applied_during_steady_rerank_per_s": steady["applied_per_s"],
        "slowest_batch_during_steady_rerank_ms": steady["slowest_batch_ms"],
        "target_s_at_1m": 20,
        "target_first_s_at_1m": 60,
    }


async def _rerank_with_batches(engine: Any, settings: Any, sample: bool) -> dict[str, Any]:
    """The background re-rank (`rerank_concurrently`, as the service runs it) while consumer
    batches of 500 purchases of existing customers keep being applied beside it: how many,
    how fast and the slowest batch (a stalled consumer would show here)."""
    from services.analytics.projection import handle_batch
    from services.analytics.recompute import rerank_concurrently
    from shared.contracts import interactions as ic
    from shared.db import session_factory
    from shared.outbox import build_event

    sessions = session_factory(engine)
    async with engine.connect() as conn:
        ids = list(
            (
                await conn.execute(
                    sa.text("SELECT customer_id FROM customer_facts TABLESAMPLE SYSTEM (1)")
                )
            ).scalars()
        )
    rng = random.Random(2)
    started = time.perf_counter()
    task = asyncio.create_task(rerank_concurrently(engine, settings))
    batches, applied, slowest = 0, 0, 0.0
    while sample and ids and not task.done():
        batch = [
            build_event(
                ic.PurchaseRecorded(
                    customer_id=rng.choice(ids),
                    occurred_at=datetime.now(UTC),
                    purchase_id=uuid.uuid4(),
                    external_ref="R",
                    amount=Decimal(30),
                    cost=Decimal(20),
                    margin=Decimal(10),
                    currency="CNY",
                    status="paid",
                ),
                "/kehu/interactions",
            )
            for _ in range(500)
        ]
        t0 = time.perf_counter()
        async with sessions.begin() as session:
            await handle_batch(session, batch, settings, incremental=True)
        slowest = max(slowest, time.perf_counter() - t0)
        batches, applied = batches + 1, applied + len(batch)
    result = await task
    seconds = time.perf_counter() - started
    assert result is not None
    return {
        "seconds": round(seconds, 2),
        "tier_events": result.tier_events,
        "staged": result.rfm_rows,
        "stage_s": round(result.stage_ms / 1000, 2),
        "batches": batches,
        "applied_per_s": round(applied / seconds) if sample else None,
        "slowest_batch_ms": round(slowest * 1000) if sample else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat()}
    if args.events:
        results["consumer_drain"] = await bench_drain(args.events)
        print(json.dumps(results["consumer_drain"]), flush=True)
    results["tier_recompute"] = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        figure = await bench_recompute(size)
        results["tier_recompute"].append(figure)
        print(json.dumps(figure), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kehu-bench-") as state,
        infrastructure(Path(state), fixed_ports=False) as (database_url, bootstrap),
    ):
        os.environ["DATABASE_URL"] = database_url
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        os.environ.setdefault("KEHU_STATE_DIR", state)
        results = asyncio.run(run(args))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
