"""The consumer over the real broker, publishing back, and rebuild-from-feeds equals live."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import sqlalchemy as sa

from services.analytics.main import create_app
from shared.app import ServiceSpec, create_service_app
from shared.consumer import dlq_topic
from shared.contracts import ANALYTICS_TOPIC
from shared.db import create_engine, new_metadata
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.registry import REGISTRY
from shared.kafka import ensure_topics, new_producer
from shared.outbox import Outbox, OutboxRelay, inbox_table, outbox_table
from shared.settings import ServiceSettings
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import NOW, created, days_ago, ids, purchase, survey
from tests.analytics.test_lifecycle_churn import _scenario
from tests.conftest import auth
from tests.helpers import eventually, read_topic, serve, unique_topic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
# The other services' event logs have the platform's standard outbox shape.
FEED_METADATA = new_metadata()
FEED_OUTBOX = outbox_table(FEED_METADATA)
FEED_INBOX = inbox_table(FEED_METADATA)


async def produce(topic: str, records: list[tuple[bytes | None, bytes, Any]]) -> None:
    producer = new_producer(ServiceSettings())
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_consumer_applies_batches_once_in_any_order_and_publishes_tier_changes(
    fresh_database: Any,
) -> None:
    settings = analytics_settings(await fresh_database("analytics"))
    topic = settings.consumed_topics[0]
    await ensure_topics(settings, [topic])
    a, b = ids(2)
    first = purchase(b, "15")  # before b's customer.created
    poison = CloudEvent(
        source="/kehu/interactions",
        type="kehu.purchase.recorded.v1",
        partitionkey=str(a),
        data={"customer_id": str(a), "amount": "not money"},
    )
    events = [first, created(a), purchase(a, "85"), created(b), first, poison]
    records = [to_kafka(e) for e in events]
    records.append((a.bytes, b"{}", [("ce_type", b"kehu.purchase.recorded.v1")]))  # malformed
    await produce(topic, records)

    app = create_app(settings)
    async for _client in serve(app):
        engine = app.state.engine

        async def tiered(engine: Any = engine) -> bool:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.text("SELECT customer_id, tier, contribution FROM customer_facts")
                    )
                ).all()
            return {r.customer_id: (r.tier, r.contribution) for r in rows} == {
                a: ("A", 85),  # b: before = 85 of 100 -> B
                b: ("B", 15),
            }

        await eventually(tiered, timeout=60)
        async with engine.connect() as conn:
            result = await conn.execute(sa.text("SELECT status, count(*) FROM inbox GROUP BY 1"))
            inbox = {status: n for status, n in result.all()}
        assert inbox == {"processed": 4, "dead_lettered": 1}  # the duplicate counted once

        # The relay publishes the tier changes; the shared topic also holds other tests' events.
        tiers: dict[str, str] = {}

        async def tiers_published(tiers: dict[str, str] = tiers) -> bool:
            published = await read_topic(BOOTSTRAP, ANALYTICS_TOPIC)
            tiers.clear()
            tiers.update(
                (r.key.decode(), json.loads(r.value)["tier"])
                for r in published
                if r.key in (str(a).encode(), str(b).encode())
                and dict(r.headers)["ce_type"] == b"kehu.customer.tier_changed.v1"
            )
            return len(tiers) == 2

        await eventually(tiers_published, timeout=60, interval=0.5)
        assert tiers == {str(a): "A", str(b): "B"}

    parked = await read_topic(BOOTSTRAP, dlq_topic(settings.consumer_group), at_least=2)
    assert len(parked) == 2


async def _producer_logs(
    fresh_database: Any,
    prefix: str,
    events: list[CloudEvent],
    urls: dict[str, str] | None = None,
) -> dict[str, str]:
    """Emit the events through each domain's outbox, relay them to `prefix` topics.

    Pass the `urls` of an earlier call to append to the same event logs.
    """
    if urls is None:
        urls = {n: await fresh_database(n) for n in ("profiles", "interactions", "complaints")}
    by_topic = {"kehu.customers": "profiles", "kehu.interactions": "interactions"}
    for name, url in urls.items():
        settings = ServiceSettings(service_database_url=url, service_name=name)
        engine = create_engine(settings)
        outbox = Outbox(FEED_OUTBOX, f"/kehu/{name}")
        contracts = [
            REGISTRY.parse(e.type, e.data)
            for e in events
            if by_topic.get(REGISTRY.parse(e.type, e.data).topic, "complaints") == name
        ]
        try:
            async with engine.begin() as conn:
                await outbox.emit(conn, *contracts)
                await conn.execute(sa.text("UPDATE outbox SET topic = :p || topic"), {"p": prefix})
            topics = {
                prefix + t for t in ("kehu.customers", "kehu.interactions", "kehu.complaints")
            }
            relay = OutboxRelay(settings, engine, FEED_OUTBOX, topics)
            try:
                while await relay.sequence_once() or await relay.publish_once():
                    pass
            finally:
                await relay.stop()
        finally:
            await engine.dispose()
    return urls


@contextlib.asynccontextmanager
async def feed_services(urls: dict[str, str]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Serve each source database's `GET /events` feed in-process: name -> client."""
    async with contextlib.AsyncExitStack() as stack:
        feeds = {}
        for name, url in urls.items():
            spec = ServiceSpec(
                name=name,
                title=name,
                description=name,
                settings=ServiceSettings(service_database_url=url, service_name=name),
                outbox=FEED_OUTBOX,
                inbox=FEED_INBOX,
            )
            served = serve(create_service_app(spec))
            stack.push_async_callback(served.aclose)
            feeds[name] = await served.__anext__()
        yield feeds


async def test_rebuild_from_the_feeds_equals_the_live_projection(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    prefix = f"{unique_topic()}."
    x, y = ids(2)
    events = [
        *_scenario(),
        created(x, region="east"),
        *[purchase(x, "12", at=days_ago(d)) for d in (200, 100, 10)],
        survey(y, {"overall": 2, "delivery": 5}, nps=3, effort=6),
    ]
    urls = await _producer_logs(fresh_database, prefix, events)
    live = analytics_settings(
        await fresh_database("analytics"),
        consumed_topics=[
            prefix + t for t in ("kehu.customers", "kehu.interactions", "kehu.complaints")
        ],
    )
    rebuilt = analytics_settings(await fresh_database("analytics"), consumer_enabled=False)

    live_app = create_app(live)
    async for client in serve(live_app):
        live_db = AnalyticsDb(live, live_app.state.engine)

        async def consumed(live_db: AnalyticsDb = live_db) -> bool:
            rows = await live_db.rows("SELECT count(*) AS n FROM inbox")
            return rows[0].n == len(events)

        await eventually(consumed, timeout=60)
        await live_db.rerank(NOW)
        live_state = await snapshot(live_db)

        # Rebuilding the live projection in place changes nothing, so publishes nothing.
        async with feed_services(urls) as feeds:
            live_app.state.feed_clients = feeds
            again = await rebuild_via_api(client, token)
            per_feed = {
                name: sum(1 for e in events if e.source == f"/kehu/{name}") for name in urls
            }
            assert again["result"]["events"] == per_feed
            assert again["result"]["rerank"]["tier_events"] == 0
            await live_db.rerank(NOW)
            assert await snapshot(live_db) == live_state

            rebuilt_app = create_app(rebuilt)
            async for other in serve(rebuilt_app):
                rebuilt_app.state.feed_clients = feeds
                forbidden = await other.post("/admin/rebuild", headers=auth(token("analyst")))
                assert forbidden.status_code == 403
                none_yet = await other.get("/admin/rebuild", headers=auth(token("admin")))
                assert none_yet.status_code == 404
                await rebuild_via_api(other, token)
                rebuilt_db = AnalyticsDb(rebuilt, rebuilt_app.state.engine)
                await rebuilt_db.rerank(NOW)
                assert await snapshot(rebuilt_db) == live_state


async def rebuild_via_api(
    client: Any, token: Callable[..., str], expect: str = "succeeded"
) -> dict[str, Any]:
    started = await client.post("/admin/rebuild", headers=auth(token("admin")))
    assert started.status_code == 202, started.text
    job: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal job
        job = (await client.get("/admin/rebuild", headers=auth(token("admin")))).json()
        return bool(job["status"] != "running")

    await eventually(finished, timeout=60)
    assert job["status"] == expect, job
    return job


async def test_a_rebuild_with_an_unreachable_feed_fails_and_changes_nothing(
    analytics_db: AnalyticsDb, token: Callable[..., str]
) -> None:
    await analytics_db.apply([purchase(ids(1)[0], "10")])
    await analytics_db.rerank()
    analytics_db.settings.consumer_enabled = False
    analytics_db.settings.profiles_url = "http://127.0.0.1:9"  # nothing listens there
    before = await snapshot(analytics_db)
    async for client in serve(create_app(analytics_db.settings)):
        job = await rebuild_via_api(client, token, expect="failed")
        assert "profiles feed unreachable" in job["error"]
    assert await snapshot(analytics_db) == before


async def snapshot(db: AnalyticsDb) -> dict[str, Any]:
    tables = {
        "customer_facts": "customer_id",
        "purchases": "purchase_id",
        "refunds": "refund_id",
        "interactions": "interaction_id",
        "surveys": "survey_id",
        "survey_answers": "survey_id, dimension",
        "complaints": "complaint_id",
        "customer_aliases": "merged_customer_id",
    }
    state: dict[str, Any] = {}
    for table, order in tables.items():
        rows = await db.rows(f"SELECT * FROM {table} ORDER BY {order}")
        state[table] = [{k: v for k, v in r._mapping.items() if k != "facts_at"} for r in rows]
    assert state["customer_facts"], "nothing to compare"
    return state
