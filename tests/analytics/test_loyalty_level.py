"""The loyalty level in analytics: `loyalty.level_changed` from the real broker to the insights,
latest change wins whatever the order and duplicates, and GDPR export and erasure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from services.analytics.main import create_app
from shared.contracts.customers import CustomerErased
from shared.events.envelope import CloudEvent, to_kafka
from shared.kafka import ensure_topics
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import NOW, created, days_ago, event, ids, level_changed, purchase
from tests.analytics.test_pipeline import produce
from tests.conftest import auth
from tests.helpers import eventually, serve


async def test_a_level_change_from_the_broker_shows_and_an_older_or_repeated_one_changes_nothing(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    settings = analytics_settings(await fresh_database("analytics"))
    topic = settings.consumed_topics[0]
    await ensure_topics(settings, [topic])
    [customer] = ids(1)
    silver = level_changed(customer, "silver", days_ago(3), previous="member")
    gold = level_changed(customer, "gold", days_ago(1), previous="silver")
    await produce(topic, [to_kafka(e) for e in (created(customer), silver, gold)])
    headers = auth(token("analyst"))

    app = create_app(settings)
    async for client in serve(app):

        async def level(client: httpx.AsyncClient = client) -> tuple[str, datetime] | None:
            response = await client.get(f"/customers/{customer}/insights", headers=headers)
            shown = response.json().get("loyalty_level") if response.status_code == 200 else None
            return shown and (shown["code"], datetime.fromisoformat(shown["changed_at"]))

        async def shows_gold() -> bool:
            return await level() == ("gold", days_ago(1))

        await eventually(shows_gold, timeout=60)

        # The same event again, then an older change arriving late; a purchase behind them on
        # the same key (so the same partition, in order) tells when the consumer got past them.
        late = level_changed(customer, "member", days_ago(2), previous="silver")
        marker = purchase(customer, "10")
        await produce(topic, [to_kafka(e) for e in (gold, late, marker)])

        async def marker_applied(marker: CloudEvent = marker) -> bool:
            async with app.state.engine.connect() as conn:
                row = await conn.execute(
                    sa.text("SELECT 1 FROM inbox WHERE event_id = :id AND status = 'processed'"),
                    {"id": marker.id},
                )
                return row.first() is not None

        await eventually(marker_applied, timeout=60)
        assert await level() == ("gold", days_ago(1))
        async with app.state.engine.connect() as conn:
            seen = await conn.execute(
                sa.text("SELECT event_id FROM inbox WHERE event_id IN (:gold, :late)"),
                {"gold": gold.id, "late": late.id},
            )
            assert set(seen.scalars()) == {gold.id, late.id}  # the late change was consumed


async def test_the_level_is_exported_and_erasure_clears_it(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, other = ids(2)
    await analytics_db.apply(
        [
            created(x, industry="retail"),
            created(other),
            purchase(x, "40", amount="100", at=days_ago(20)),
            level_changed(x, "gold", days_ago(5), previous="silver"),
            level_changed(other, "silver", days_ago(5), previous="member"),
        ]
    )
    admin = auth(token("admin"))
    export = (await client.get(f"/customers/{x}/export", headers=admin)).json()
    facts = export["data"]["facts"]
    assert facts["loyalty_level"] == "gold"
    assert datetime.fromisoformat(facts["loyalty_level_at"]) == days_ago(5)
    assert export["definitions"]["loyalty_level"]

    await analytics_db.apply([event(CustomerErased(customer_id=x, occurred_at=NOW))])
    # A late level change about the erased customer is not ingested again.
    await analytics_db.apply([level_changed(x, "platinum", NOW)])

    assert (await client.get(f"/customers/{x}/insights", headers=admin)).status_code == 404
    assert await analytics_db.rows("SELECT 1 FROM customer_facts WHERE customer_id = :x", x=x) == []
    [anonymous] = await analytics_db.rows("SELECT * FROM customer_facts WHERE erased")
    assert (anonymous.loyalty_level, anonymous.loyalty_level_at, anonymous.industry) == (
        None,
        None,
        None,
    )
    assert str(anonymous.contribution) == "40.0000"  # the figures stay, anonymous
    kept = (await client.get(f"/customers/{other}/insights", headers=admin)).json()
    assert kept["loyalty_level"]["code"] == "silver"  # another customer's level untouched
