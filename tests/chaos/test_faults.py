"""Faults under load, each followed by a reconciliation of analytics against the source.

The claim under test: every accepted write is reflected exactly once in analytics. After each
fault the purchases, revenue and profit contribution per customer that analytics holds must
equal the sums in the interactions database, which must hold every write the API accepted.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.auth import issue_token
from shared.settings import ServiceSettings
from tests.chaos.conftest import ChaosStack, record, wait_ready
from tests.helpers import read_topic

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]
CUSTOMERS = [uuid.uuid4() for _ in range(60)]
TOKEN = issue_token(ServiceSettings(), "integration", subject="chaos")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Load:
    """What a write load saw: accepted purchase ids, and every other outcome by kind."""

    accepted: dict[str, tuple[str, Decimal, Decimal]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    recovered_at: float = 0.0  # time.monotonic() when the fault ended

    @property
    def attempted(self) -> int:
        return sum(self.outcomes.values())


async def write_load(url: str, load: Load, stop: asyncio.Event, rate: float = 80) -> None:
    """POST purchases at about `rate` per second from 4 workers until `stop` is set."""
    rng = random.Random()

    async def worker(client: httpx.AsyncClient) -> None:
        interval = 4 / rate
        while not stop.is_set():
            started = time.monotonic()
            customer = rng.choice(CUSTOMERS)
            amount = Decimal(rng.randint(100, 50_000)) / 100
            cost = (amount * Decimal(rng.randint(30, 90)) / 100).quantize(Decimal("0.01"))
            body = {
                "customer_id": str(customer),
                "external_ref": f"CH-{uuid.uuid4().hex}",
                "occurred_at": (datetime.now(UTC) - timedelta(days=rng.randint(1, 60))).isoformat(),
                "amount": str(amount),
                "cost": str(cost),
                "currency": "CNY",
                "status": "paid",
            }
            try:
                response = await client.post("/purchases", json=body, headers=HEADERS)
            except httpx.TimeoutException:
                load.outcomes["timeout"] += 1
            except httpx.HTTPError as exc:
                load.outcomes[f"connection error ({type(exc).__name__})"] += 1
            else:
                load.latencies.append(time.monotonic() - started)
                if response.status_code in (200, 201):
                    load.accepted[response.json()["id"]] = (str(customer), amount, amount - cost)
                    load.outcomes["accepted"] += 1
                else:
                    kind = response.headers.get("content-type", "")
                    load.outcomes[f"{response.status_code} {kind.split(';')[0]}"] += 1
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        await asyncio.gather(*(worker(client) for _ in range(4)))


async def sums(database_url: str, sql: str) -> dict[str, tuple[int, Decimal, Decimal]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(sql)
    finally:
        await conn.close()
    return {
        str(r[0]): (
            int(r[1]),
            Decimal(r[2]).quantize(Decimal("0.01")),
            Decimal(r[3]).quantize(Decimal("0.01")),
        )
        for r in rows
    }


SOURCE_SQL = "SELECT customer_id, count(*), sum(amount), sum(margin) FROM purchases GROUP BY 1"
FACT_SQL = (
    "SELECT customer_id, count(*), sum(amount), sum(margin) FROM purchases "
    "WHERE amount IS NOT NULL GROUP BY 1"
)
CUSTOMER_SQL = (
    "SELECT customer_id, purchases_total, revenue, contribution FROM customer_facts "
    "WHERE purchases_total > 0"
)


async def reconcile(stack: ChaosStack, load: Load, timeout: float = 120) -> dict[str, Any]:
    """Wait until analytics equals the source; assert every accepted write is in the source.

    The report gives the seconds from the end of the fault until analytics agreed.
    """
    source_url = stack.database_url("interactions")
    analytics_url = stack.database_url("analytics")
    conn = await asyncpg.connect(source_url)
    try:
        stored = {str(r[0]) for r in await conn.fetch("SELECT id FROM purchases")}
    finally:
        await conn.close()
    missing = set(load.accepted) - stored
    assert not missing, f"{len(missing)} accepted writes are not in the source database"

    deadline = time.monotonic() + timeout
    source = facts = customers = {}
    while time.monotonic() < deadline:
        source = await sums(source_url, SOURCE_SQL)
        facts = await sums(analytics_url, FACT_SQL)
        customers = await sums(analytics_url, CUSTOMER_SQL)
        if source == facts == customers:
            break
        await asyncio.sleep(0.5)
    converged = time.monotonic() - (load.recovered_at or time.monotonic())
    _assert_equal(source, facts, "analytics purchase facts")
    _assert_equal(source, customers, "analytics customer facts")
    return {
        "writes attempted": load.attempted,
        "writes accepted": len(load.accepted),
        "other outcomes": dict(load.outcomes - Counter({"accepted": len(load.accepted)})) or "none",
        "purchases in source": sum(n for n, _, _ in source.values()),
        "purchases in analytics": sum(n for n, _, _ in facts.values()),
        "revenue source = analytics": str(sum(r for _, r, _ in source.values())),
        "seconds from recovery until analytics equals the source": round(converged, 1),
        "write p99 ms": round(1000 * sorted(load.latencies)[int(0.99 * (len(load.latencies) - 1))]),
    }


def _assert_equal(source: dict[str, Any], other: dict[str, Any], what: str) -> None:
    differing = {
        c: (source.get(c), other.get(c))
        for c in set(source) | set(other)
        if source.get(c) != other.get(c)
    }
    assert not differing, f"{what} differ from the source for {len(differing)} customers: " + str(
        dict(list(differing.items())[:3])
    )


async def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples that carry `labels`."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def under_load(stack: ChaosStack, fault: Any, before: float = 4, after: float = 4) -> Load:
    """Run the write load, apply `fault` (blocking, in a thread) mid-way, stop the load."""
    load = Load()
    stop = asyncio.Event()
    writer = asyncio.create_task(write_load(stack.services["interactions"].url, load, stop))
    await asyncio.sleep(before)
    await fault()
    load.recovered_at = time.monotonic()
    await asyncio.sleep(after)
    stop.set()
    await writer
    return load


async def test_broker_killed_and_restarted_under_write_load(stack: ChaosStack) -> None:
    interactions = stack.services["interactions"].url
    readiness: Counter[int] = Counter()

    async def kill_broker() -> None:
        await asyncio.to_thread(stack.kill_broker)
        async with httpx.AsyncClient() as client:
            for _ in range(12):  # six seconds without a broker, writes still coming in
                readiness[(await client.get(f"{interactions}/health/ready")).status_code] += 1
                await asyncio.sleep(0.5)
        await asyncio.to_thread(stack.broker.start)

    applied_before = await metric(
        stack.services["analytics"].url, "kehu_feed_catchup_events_total", outcome="applied"
    )
    load = await under_load(stack, kill_broker)
    assert load.outcomes["accepted"] == load.attempted, load.outcomes  # writes never wait on Kafka
    assert readiness[503] > 0, "readiness never reported the broker down"
    figures = await reconcile(stack, load)
    applied = await metric(
        stack.services["analytics"].url, "kehu_feed_catchup_events_total", outcome="applied"
    )
    figures["readiness answers while the broker was down"] = dict(readiness)
    figures["events applied by the feed catch-up (Kafka had not delivered them in time)"] = int(
        applied - applied_before
    )
    record("Broker killed and restarted (memory storage: all records lost)", figures)


async def test_postgres_restarted_under_write_load(stack: ChaosStack) -> None:
    async def restart_postgres() -> None:
        await asyncio.to_thread(stack.restart_postgres, 2)

    load = await under_load(stack, restart_postgres, after=6)
    server_errors = {
        k: n for k, n in load.outcomes.items() if k.startswith("5") and not k.startswith("503")
    }
    assert not server_errors, f"server errors while PostgreSQL restarted: {server_errors}"
    problems = {k for k in load.outcomes if k.startswith(("4", "5"))}
    assert all(k.endswith("application/problem+json") for k in problems), load.outcomes
    assert "timeout" not in load.outcomes, "a request hung while PostgreSQL restarted"
    for service in stack.services.values():
        await asyncio.to_thread(wait_ready, service.url)
    figures = await reconcile(stack, load)
    record("PostgreSQL restarted under write load", figures)


async def test_consumer_killed_mid_batch(stack: ChaosStack) -> None:
    analytics = stack.services["analytics"]
    await asyncio.to_thread(analytics.stop)
    load = Load()
    stop = asyncio.Event()
    writer = asyncio.create_task(
        write_load(stack.services["interactions"].url, load, stop, rate=150)
    )
    await asyncio.sleep(12)  # a backlog for the consumer while it is down
    stop.set()
    await writer
    backlog = len(load.accepted)

    inbox_url = stack.database_url("analytics")

    async def applied() -> int:
        conn = await asyncpg.connect(inbox_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM inbox") or 0)
        finally:
            await conn.close()

    before = await applied()
    await asyncio.to_thread(analytics.start)
    for _ in range(3000):  # until its first batch commits (a minute at most)
        if await applied() > before:
            break
        await asyncio.sleep(0.02)
    at_kill = await applied() - before
    await asyncio.to_thread(analytics.kill)  # mid-drain: its open batch never commits
    await asyncio.to_thread(analytics.start)
    load.recovered_at = time.monotonic()
    await asyncio.to_thread(wait_ready, analytics.url)
    assert 0 < at_kill < backlog, f"not killed mid-drain: {at_kill} of {backlog} applied"
    figures = await reconcile(stack, load)
    figures["backlog when the consumer started"] = backlog
    figures["events applied when it was killed"] = at_kill
    record("Consumer killed (SIGKILL) mid-drain", figures)


async def test_duplicate_deliveries_are_counted_once(stack: ChaosStack) -> None:
    load = await under_load(stack, lambda: asyncio.sleep(0), before=3, after=0)
    await reconcile(stack, load)
    analytics = stack.services["analytics"].url
    duplicates_before = await metric(
        analytics, "kehu_consumer_events_total", group="analytics", outcome="duplicate"
    )
    copied = await redeliver(stack.broker.bootstrap, "kehu.interactions")
    load.recovered_at = time.monotonic()
    deadline = time.monotonic() + 60
    seen = 0.0
    while seen < copied and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        seen = (
            await metric(
                analytics, "kehu_consumer_events_total", group="analytics", outcome="duplicate"
            )
            - duplicates_before
        )
    assert seen >= copied, f"the consumer saw {seen} of {copied} injected duplicates"
    figures = await reconcile(stack, load)
    figures["duplicate records injected"] = copied
    figures["duplicates the consumer recognised"] = int(seen)
    record("Duplicate deliveries injected", figures)


async def redeliver(bootstrap: str, topic: str) -> int:
    """Produce a second copy of every record on `topic` (same partition, key, value, headers)."""
    records = await read_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for r in records:
            await producer.send(
                topic, r.value, key=r.key, headers=list(r.headers), partition=r.partition
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(records)
