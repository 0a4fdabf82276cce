"""The catch-up: events a broker lost are read back from the source feeds, and counted once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.analytics.catchup import CATCHUP_EVENTS, catch_up
from services.analytics.main import create_app
from shared.db import session_factory
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import NOW, created, days_ago, ids, purchase
from tests.analytics.test_pipeline import _producer_logs, feed_services
from tests.helpers import eventually, serve, unique_topic

TOPICS = ("kehu.customers", "kehu.interactions", "kehu.complaints")


async def test_events_the_broker_lost_are_applied_from_the_feeds_once(fresh_database: Any) -> None:
    x, y = ids(2)
    delivered = [created(x), created(y), *[purchase(x, "10", at=days_ago(d)) for d in (30, 20)]]
    # The broker "loses" these: relayed to topics nobody consumes, as a wiped broker would.
    lost = [purchase(x, "5", at=days_ago(10)), purchase(y, "7", at=days_ago(5))]
    prefix = f"{unique_topic()}."
    urls = await _producer_logs(fresh_database, prefix, delivered)
    await _producer_logs(fresh_database, f"{unique_topic()}.lost.", lost, urls)
    settings = analytics_settings(
        await fresh_database("analytics"),
        consumed_topics=[prefix + t for t in TOPICS],
        catchup_grace_s=0,
    )
    app = create_app(settings)
    async with feed_services(urls) as feeds:
        async for _client in serve(app):
            db = AnalyticsDb(settings, app.state.engine)

            async def kafka_delivered(db: AnalyticsDb = db) -> bool:
                return (await db.rows("SELECT count(*) AS n FROM inbox"))[0].n == len(delivered)

            await eventually(kafka_delivered, timeout=60)
            sessions = session_factory(app.state.engine)
            result = await catch_up(sessions, settings, feeds)
            assert result.checked == {"profiles": 2, "interactions": 4, "complaints": 0}
            assert result.applied == {"profiles": 0, "interactions": 2, "complaints": 0}
            facts = await db.facts()
            assert {c: f.purchases_total for c, f in facts.items()} == {x: 3, y: 1}
            assert (facts[x].contribution, facts[y].contribution) == (25, 7)
            inbox = await db.rows("SELECT count(*) AS n FROM inbox")
            assert inbox[0].n == len(delivered) + len(lost)  # every event recorded once

            # The saved positions stop the next round re-reading the feeds; the complaints
            # feed is empty, so it has no position yet.
            positions = await db.rows("SELECT source, position FROM feed_positions")
            assert {r.source: r.position for r in positions} == {"profiles": 2, "interactions": 4}
            again = await catch_up(sessions, settings, feeds)
            assert again.checked == {"profiles": 0, "interactions": 0, "complaints": 0}


async def test_the_service_catches_up_on_its_own_schedule(fresh_database: Any) -> None:
    [x] = ids(1)
    urls = await _producer_logs(fresh_database, f"{unique_topic()}.lost.", [created(x)])
    settings = analytics_settings(
        await fresh_database("analytics"), catchup_every_s=0.2, catchup_grace_s=0
    )
    applied_before = CATCHUP_EVENTS.labels("profiles", "applied")._value.get()
    app = create_app(settings)
    async with feed_services(urls) as feeds:
        async for _client in serve(app):
            app.state.feed_clients = feeds
            db = AnalyticsDb(settings, app.state.engine)

            async def caught_up(db: AnalyticsDb = db) -> bool:
                return set(await db.facts()) == {x}

            await eventually(caught_up, timeout=30)
    assert CATCHUP_EVENTS.labels("profiles", "applied")._value.get() - applied_before == 1


async def test_the_catch_up_leaves_recent_events_to_kafka(fresh_database: Any) -> None:
    [x] = ids(1)
    urls = await _producer_logs(fresh_database, f"{unique_topic()}.", [created(x)])
    settings = analytics_settings(await fresh_database("analytics"), catchup_grace_s=60)
    engine_app = create_app(settings)
    async with feed_services(urls) as feeds:
        async for _client in serve(engine_app):
            sessions = session_factory(engine_app.state.engine)
            now = await catch_up(sessions, settings, feeds, now=NOW)
            assert now.checked["profiles"] == 0  # emitted just now: within the grace period
            later = await catch_up(sessions, settings, feeds, now=NOW + timedelta(minutes=5))
            assert (later.checked["profiles"], later.applied["profiles"]) == (1, 1)
            db = AnalyticsDb(settings, engine_app.state.engine)
            assert set(await db.facts()) == {x}
