"""Kehu's own figures for `make bench`, each compared with a raw baseline of the same run."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from bench.run import Report, scenario
from services.analytics.models import inbox as analytics_inbox
from services.profiles.models import outbox as profiles_outbox
from shared.consumer import ConsumerRunner
from shared.db import create_engine
from shared.events.envelope import CloudEvent
from shared.migrate import alembic_config, ensure_database
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings


async def fresh_db(env: dict[str, str], service: str) -> str:
    name = f"kehu_bench_{service}_{uuid.uuid4().hex[:6]}"
    url = (
        ServiceSettings(
            database_url=env["DATABASE_URL"], service_name=service
        ).sqlalchemy_url.rsplit("/", 1)[0]
        + f"/{name}"
    )
    await ensure_database(url)
    await asyncio.to_thread(command.upgrade, alembic_config(service, url), "head")
    return url


@scenario
async def relay_and_consumer_drain(report: Report, env: dict[str, str]) -> None:
    n = 50_000
    topic = f"kehu.bench.{uuid.uuid4().hex[:6]}"
    url = await fresh_db(env, "profiles")
    settings = ServiceSettings(
        service_database_url=url, service_name="profiles", outbox_batch_size=2000
    )
    engine = create_engine(settings)
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": uuid.uuid4(),
            "type": "kehu.bench.happened.v1",
            "source": "/kehu/bench",
            "subject": f"c-{i % 5000}",
            "partition_key": f"c-{i % 5000}",
            "topic": topic,
            "time": now,
            "data": {"customer_id": f"c-{i % 5000}", "n": i},
        }
        for i in range(n)
    ]
    async with engine.begin() as conn:
        for start in range(0, n, 10_000):
            await conn.execute(sa.insert(profiles_outbox), rows[start : start + 10_000])
    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    started = time.perf_counter()
    published = 0
    try:
        while published < n:
            await relay.sequence_once()
            published += await relay.publish_once()
    finally:
        await relay.stop()
        await engine.dispose()
    report.compared(
        "outbox relay drain (sequence + publish + mark)",
        n / (time.perf_counter() - started),
        "events/s",
        "kafka_produce",
        note=f"{n} pre-filled outbox rows, batches of 2000",
    )

    consumer_url = await fresh_db(env, "analytics")
    consumer_settings = ServiceSettings(
        service_database_url=consumer_url, service_name="analytics", consumer_batch_size=2000
    )
    consumer_engine = create_engine(consumer_settings)

    async def noop(session: Any, event: CloudEvent) -> None:
        return None

    runner = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        f"bench-{uuid.uuid4().hex[:6]}",
        [topic],
        {"kehu.bench.happened.v1": noop},
    )
    runner.start()
    try:
        while runner.processed_total == 0:  # noqa: ASYNC110 (polling a counter)
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        first = runner.processed_total
        deadline = started + 300
        while runner.processed_total < n and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        rate = (runner.processed_total - first) / (time.perf_counter() - started)
    finally:
        await runner.stop()
        await consumer_engine.dispose()
    report.compared(
        "consumer runner drain (batched inbox insert, no-op effect)",
        rate,
        "events/s",
        "kafka_consume",
        note="one inbox insert and one savepoint per batch of 2000",
    )
