"""Point 6: tier, lifecycle and churn risk follow the analytics service's events."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from services.profiles.config import Settings
from shared.contracts.analytics import (
    CustomerChurnRiskChanged,
    CustomerLifecycleChanged,
    CustomerTierChanged,
)
from shared.contracts.customers import CustomerUpdated
from shared.events.envelope import to_kafka
from shared.events.registry import EventContract
from shared.kafka import new_producer
from shared.outbox import build_event
from tests.helpers import eventually
from tests.profiles.factories import create_customer


async def publish(*events: EventContract) -> None:
    producer = new_producer(Settings(kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"]))
    await producer.start()
    try:
        for event in events:
            key, value, headers = to_kafka(build_event(event, "/kehu/analytics"))
            await producer.send_and_wait(event.topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_insights_follow_analytics_events_and_ignore_stale_ones(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    cid = customer["id"]
    now = datetime.now(UTC)
    await publish(
        CustomerTierChanged(
            customer_id=cid,
            occurred_at=now,
            tier="A",
            previous_tier="B",
            contribution=Decimal("9000"),
        ),
        # Older than the one above (arrives later): must not win.
        CustomerTierChanged(
            customer_id=cid,
            occurred_at=now - timedelta(hours=1),
            tier="C",
            previous_tier=None,
            contribution=Decimal("1"),
        ),
        CustomerLifecycleChanged(
            customer_id=cid, occurred_at=now, stage="loyal", previous_stage="repeat"
        ),
        CustomerChurnRiskChanged(
            customer_id=cid, occurred_at=now, score=72, level="high", reasons=["no purchase"]
        ),
    )
    expected = {
        "tier": "A",
        "lifecycle_stage": "loyal",
        "churn_risk": {"score": 72, "level": "high", "reasons": ["no purchase"]},
    }
    seen: dict[str, Any] = {}

    async def applied() -> bool:
        response = await client.get(f"/customers/{cid}", headers=admin)
        seen.update(response.json()["insights"])
        return bool(response.json()["insights"] == expected)

    await eventually(applied, timeout=60, interval=0.3)
    assert seen == expected
    # Insights are read-only: PATCH cannot set them.
    response = await client.patch(
        f"/customers/{cid}", json={"insights": {"tier": "C"}}, headers={**admin, "If-Match": '"1"'}
    )
    assert response.status_code == 422


async def test_a_visible_insight_change_moves_updated_at_and_publishes_customer_updated(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    cid, created_updated_at = customer["id"], customer["updated_at"]
    now = datetime.now(UTC)
    churn = {"customer_id": cid, "occurred_at": now, "reasons": ["no purchase"]}
    await publish(
        CustomerTierChanged(
            customer_id=cid, occurred_at=now, tier="B", previous_tier=None, contribution=1
        ),
        CustomerChurnRiskChanged(**churn, score=72, level="high"),
        # The score moves within its level: no visible change, updated_at stays.
        CustomerChurnRiskChanged(
            **{**churn, "occurred_at": now + timedelta(seconds=1)}, score=80, level="high"
        ),
        CustomerLifecycleChanged(
            customer_id=cid, occurred_at=now, stage="repeat", previous_stage=None
        ),
    )

    async def lifecycle_applied() -> bool:
        response = await client.get(f"/customers/{cid}", headers=admin)
        return bool(response.json()["insights"]["lifecycle_stage"] == "repeat")

    await eventually(lifecycle_applied, timeout=60, interval=0.3)
    body = (await client.get(f"/customers/{cid}", headers=admin)).json()
    assert body["insights"]["churn_risk"]["score"] == 80
    assert body["updated_at"] > created_updated_at
    # A sync by `updated_since` just after the creation finds the customer.
    since = {"updated_since": created_updated_at, "sort": "updated_at", "limit": 200}
    listed = await client.get("/customers", params=since, headers=admin)
    assert cid in [c["id"] for c in listed.json()["items"]]

    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT data FROM outbox WHERE type = 'kehu.customer.updated.v1' "
                "AND subject = :cid ORDER BY id"
            ),
            {"cid": cid},
        )
        updates = [CustomerUpdated.model_validate(r.data) for r in rows]
    assert [u.changed_fields for u in updates] == [
        ["tier"],
        ["churn_risk_level"],
        ["lifecycle_stage"],
    ]
    last = updates[-1].insights
    assert last is not None
    assert (last.tier, last.lifecycle_stage, last.churn_risk_level) == ("B", "repeat", "high")
    assert updates[-1].dimensions.customer_number == customer["customer_number"]
