"""The outbox and the consumer runner against the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.analytics.models import inbox as analytics_inbox
from services.profiles.models import outbox as profiles_outbox
from shared.consumer import DECODE_STEP, ConsumerRunner, dlq_topic
from shared.db import create_engine
from shared.devstack import TansuBroker, free_port
from shared.events.envelope import CloudEvent
from shared.kafka import ensure_topics, missing_topics, new_producer
from shared.outbox import Outbox, OutboxRelay
from tests.conftest import settings_for
from tests.helpers import eventually, header, make_contract, read_topic, unique_topic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")


async def drain(relay: OutboxRelay) -> int:
    total = 0
    while True:
        await relay.sequence_once()
        published = await relay.publish_once()
        total += published
        if not published:
            return total


async def make_effects_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("CREATE TABLE effects (n int PRIMARY KEY, applied int NOT NULL)")
        )


async def count_effects(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT n, applied FROM effects"))).all()
    return {row.n: row.applied for row in rows}


async def apply_effect(session: AsyncSession, event: CloudEvent) -> None:
    """Deliberately not idempotent: only the inbox can keep it from counting twice."""
    await session.execute(
        sa.text(
            "INSERT INTO effects (n, applied) VALUES (:n, 1) "
            "ON CONFLICT (n) DO UPDATE SET applied = effects.applied + 1"
        ),
        {"n": event.data["n"]},
    )


@pytest.fixture
async def producer_side(fresh_database: Any) -> Any:
    url = await fresh_database("profiles")
    settings = settings_for(url, service_name="profiles")
    engine = create_engine(settings)
    yield settings, engine
    await engine.dispose()


@pytest.fixture
async def consumer_side(fresh_database: Any) -> Any:
    url = await fresh_database("analytics")
    settings = settings_for(url, service_name="analytics", consumer_batch_size=200)
    engine = create_engine(settings)
    await make_effects_table(engine)
    yield settings, engine
    await engine.dispose()


async def test_rolled_back_write_never_publishes(producer_side: Any) -> None:
    settings, engine = producer_side
    topic = unique_topic()
    happened = make_contract(topic)
    outbox = Outbox(profiles_outbox, "/kehu/test")

    async with engine.connect() as conn:
        tx = await conn.begin()
        await outbox.emit(conn, happened(customer_id="c-1", n=1))
        await tx.rollback()
    async with engine.begin() as conn:
        await outbox.emit(conn, happened(customer_id="c-1", n=2))

    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    try:
        assert await drain(relay) == 1
    finally:
        await relay.stop()
    records = await read_topic(BOOTSTRAP, topic, at_least=1)
    assert [json.loads(r.value)["n"] for r in records] == [2]
    assert records[0].key == b"c-1"
    assert header(records[0], "ce_type") == happened.event_type()


async def test_committed_event_takes_effect_once_despite_duplicates_and_restart(
    producer_side: Any, consumer_side: Any
) -> None:
    settings, engine = producer_side
    consumer_settings, consumer_engine = consumer_side
    topic = unique_topic()
    happened = make_contract(topic)
    outbox = Outbox(profiles_outbox, "/kehu/test")
    async with engine.begin() as conn:
        await outbox.emit(conn, *(happened(customer_id=f"c-{n % 5}", n=n) for n in range(60)))

    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    try:
        assert await drain(relay) == 60
        # The relay is at-least-once: simulate a crash after sending, before marking sent.
        async with engine.begin() as conn:
            await conn.execute(sa.update(profiles_outbox).values(published_at=None))
        assert await drain(relay) == 60
    finally:
        await relay.stop()

    group = f"g-{uuid.uuid4().hex[:8]}"
    blocked = asyncio.Event()
    seen = 0

    async def slow_handler(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal seen
        await apply_effect(session, event)
        seen += 1
        if seen == 25:  # stop mid-batch: effects so far are applied but not committed
            blocked.set()
            await asyncio.Event().wait()

    first = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        group,
        [topic],
        {happened.event_type(): slow_handler},
    )
    first.start()
    await asyncio.wait_for(blocked.wait(), 30)
    await first.stop()
    assert await count_effects(consumer_engine) == {}

    second = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        group,
        [topic],
        {happened.event_type(): apply_effect},
    )
    second.start()
    try:

        async def all_applied() -> bool:
            return len(await count_effects(consumer_engine)) == 60 and second.lag == 0

        await eventually(all_applied)
    finally:
        await second.stop()
    effects = await count_effects(consumer_engine)
    assert effects == {n: 1 for n in range(60)}
    async with consumer_engine.connect() as conn:
        inbox_rows = await conn.scalar(sa.select(sa.func.count()).select_from(analytics_inbox))
    assert inbox_rows == 60


async def test_a_batch_is_read_in_short_steps_up_to_the_batch_size_in_order(
    producer_side: Any, consumer_side: Any
) -> None:
    """The runner reads what the consumer holds `DECODE_STEP` records at a time, so the batch
    in the database is not held back; the pieces still make batches up to the configured size,
    each customer's events in order, each applied once."""
    settings, engine = producer_side
    consumer_settings, consumer_engine = consumer_side
    limit = consumer_settings.consumer_batch_size
    assert limit > DECODE_STEP  # a batch needs several steps
    topic = unique_topic()
    happened = make_contract(topic)
    outbox = Outbox(profiles_outbox, "/kehu/test")
    total = 3 * limit
    async with engine.begin() as conn:
        await outbox.emit(conn, *(happened(customer_id=f"c-{n % 7}", n=n) for n in range(total)))
    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    try:
        assert await drain(relay) == total
    finally:
        await relay.stop()

    batches: list[list[int]] = []

    async def record(session: AsyncSession, events: list[CloudEvent]) -> None:
        for event in events:
            await apply_effect(session, event)
        batches.append([event.data["n"] for event in events])

    runner = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        f"g-{uuid.uuid4().hex[:8]}",
        [topic],
        {},
        batch_handler=record,
        batch_types={happened.event_type()},
    )
    runner.start()
    try:

        async def all_applied() -> bool:
            return len(await count_effects(consumer_engine)) == total

        await eventually(all_applied)
    finally:
        await runner.stop()
    assert await count_effects(consumer_engine) == {n: 1 for n in range(total)}
    sizes = [len(b) for b in batches]
    assert max(sizes) <= limit, sizes
    assert max(sizes) > DECODE_STEP, f"no batch of more than one step: {sizes}"
    for customer in range(7):
        seen = [n for batch in batches for n in batch if n % 7 == customer]
        assert seen == sorted(seen), f"c-{customer} out of order: {seen}"


async def test_writes_succeed_while_broker_is_down_and_all_arrive_in_order(
    producer_side: Any,
) -> None:
    _, engine = producer_side
    broker = TansuBroker(free_port())
    broker.start()
    settings = settings_for(
        producer_side[0].service_database_url,
        service_name="profiles",
        kafka_bootstrap_servers=broker.bootstrap,
        outbox_poll_interval_s=0.2,
        outbox_batch_size=7,
    )
    topic = unique_topic()
    happened = make_contract(topic)
    outbox = Outbox(profiles_outbox, "/kehu/test")
    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    relay.start()
    try:
        async with engine.begin() as conn:
            await outbox.emit(conn, happened(customer_id="c-0", n=-1))
        await eventually(lambda: _backlog_is(relay, 0))

        broker.stop()
        for n in range(40):  # each write its own transaction, as requests would be
            async with engine.begin() as conn:
                await outbox.emit(conn, happened(customer_id=f"c-{n % 4}", n=n))
        await asyncio.sleep(1.0)
        backlog, _ = await relay.backlog()
        assert backlog == 40, "nothing can be published while the broker is down"

        broker.start()  # Tansu keeps data in memory: this is an empty broker on the same port
        await eventually(lambda: _backlog_is(relay, 0), timeout=60)
        records = await read_topic(broker.bootstrap, topic, at_least=40)
    finally:
        await relay.stop()
        broker.stop()

    by_customer: dict[str, list[int]] = {}
    seen_ids: set[str] = set()
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event_id = header(record, "ce_id")
        assert event_id is not None
        if event_id in seen_ids:
            continue  # at-least-once: a retried batch may repeat events; consumers dedupe
        seen_ids.add(event_id)
        by_customer.setdefault(record.key.decode(), []).append(json.loads(record.value)["n"])
    assert sorted(n for ns in by_customer.values() for n in ns) == list(range(40))
    for customer, ns in by_customer.items():
        assert ns == sorted(ns), f"{customer}'s events arrived out of order: {ns}"


async def _backlog_is(relay: OutboxRelay, expected: int) -> bool:
    backlog, _ = await relay.backlog()
    return backlog == expected


async def test_poison_message_is_dead_lettered_and_consumer_keeps_going(
    producer_side: Any, consumer_side: Any
) -> None:
    settings, engine = producer_side
    consumer_settings, consumer_engine = consumer_side
    topic = unique_topic()
    happened = make_contract(topic)
    async with engine.begin() as conn:
        await Outbox(profiles_outbox, "/kehu/test").emit(
            conn, *(happened(customer_id="c-1", n=n) for n in range(5))
        )
    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    try:
        await drain(relay)
    finally:
        await relay.stop()
    # A record that is not a CloudEvent at all, after the good ones.
    producer = new_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not json", key=b"c-1")
    finally:
        await producer.stop()

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        if event.data["n"] == 2:
            raise ValueError("cannot apply n=2")
        await apply_effect(session, event)

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        group,
        [topic],
        {happened.event_type(): handler},
    )
    runner.start()
    try:
        await eventually(lambda: _has_effects(consumer_engine, 4))
        await eventually(lambda: _true(runner.dead_lettered_total == 2))
    finally:
        await runner.stop()
    assert await count_effects(consumer_engine) == {0: 1, 1: 1, 3: 1, 4: 1}
    parked = await read_topic(BOOTSTRAP, dlq_topic(group), at_least=2)
    errors = sorted(header(r, "kehu_error") or "" for r in parked)
    assert errors[0].startswith("MalformedEvent")
    assert errors[1] == "ValueError: cannot apply n=2"
    assert {header(r, "kehu_original_topic") for r in parked} == {topic}
    async with consumer_engine.connect() as conn:
        status = await conn.scalar(
            sa.select(analytics_inbox.c.status).where(analytics_inbox.c.status != "processed")
        )
    assert status == "dead_lettered"


async def _has_effects(engine: AsyncEngine, count: int) -> bool:
    return len(await count_effects(engine)) == count


async def _true(value: bool) -> bool:
    return value


async def test_parked_event_replays_once_the_cause_is_fixed(
    producer_side: Any, consumer_side: Any
) -> None:
    from shared.dlq import replay

    settings, engine = producer_side
    consumer_settings, consumer_engine = consumer_side
    topic = unique_topic()
    happened = make_contract(topic)
    async with engine.begin() as conn:
        await Outbox(profiles_outbox, "/kehu/test").emit(
            conn, *(happened(customer_id="c-7", n=n) for n in range(3))
        )
    relay = OutboxRelay(settings, engine, profiles_outbox, {topic})
    try:
        await drain(relay)
    finally:
        await relay.stop()

    broken = True

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        if broken and event.data["n"] == 1:
            raise RuntimeError("bug in the projection")
        await apply_effect(session, event)

    group = f"g-{uuid.uuid4().hex[:8]}"
    runner = ConsumerRunner(
        consumer_settings,
        consumer_engine,
        analytics_inbox,
        group,
        [topic],
        {happened.event_type(): handler},
    )
    runner.start()
    try:
        await eventually(lambda: _true(runner.dead_lettered_total == 1))
        await eventually(lambda: _has_effects(consumer_engine, 2))
        broken = False  # the fix is deployed
        assert await replay(consumer_settings, analytics_inbox, group) == 1
        await eventually(lambda: _has_effects(consumer_engine, 3))
        assert await replay(consumer_settings, analytics_inbox, group) == 0, "replayed once"
    finally:
        await runner.stop()
    assert await count_effects(consumer_engine) == {0: 1, 1: 1, 2: 1}


async def test_the_relays_topic_check_names_a_missing_topic_and_does_not_create_it(
    producer_side: Any,
) -> None:
    """What the relay asks before marking a batch published: of the batch's topics, the ones
    the broker does not have (after a restart of its memory storage), without the question
    itself creating them (which would hide the loss)."""
    settings, _ = producer_side
    present, lost = unique_topic(), unique_topic()
    await ensure_topics(settings, [present])
    producer = new_producer(settings)
    await producer.start()
    try:
        assert await missing_topics(producer, {present, lost}) == {lost}
        assert await missing_topics(producer, {present}) == set()
        assert lost not in (await producer.client.fetch_all_metadata()).topics()
    finally:
        await producer.stop()
