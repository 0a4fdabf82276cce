"""Point 6: tier, lifecycle and churn risk follow the analytics service's events."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from services.profiles import service
from services.profiles.config import Settings
from shared.context import RequestContext
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
    # One update per customer per consumer batch, naming what changed in it: however the four
    # events fell into batches, each visible field is named once (the second churn event
    # stays within its level).
    named = sorted(name for u in updates for name in u.changed_fields)
    assert named == ["churn_risk_level", "lifecycle_stage", "tier"]
    last = updates[-1].insights
    assert last is not None
    assert (last.tier, last.lifecycle_stage, last.churn_risk_level) == ("B", "repeat", "high")
    assert updates[-1].dimensions.customer_number == customer["customer_number"]


async def test_a_batch_of_insights_is_folded_in_order_with_one_update_per_customer(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    a = (await create_customer(client, admin))["id"]
    b = (await create_customer(client, admin))["id"]
    unknown = uuid.uuid4()  # analytics knows a customer profiles never had: no update
    at = datetime.now(UTC)

    def tier(customer: Any, value: str, when: datetime) -> service.Insight:
        return customer, "tier_changed_at", {"tier": value, "tier_changed_at": when}

    batch = [
        tier(a, "B", at),
        tier(a, "C", at - timedelta(hours=1)),  # older than the one applied: ignored
        (a, "lifecycle_changed_at", {"lifecycle_stage": "repeat", "lifecycle_changed_at": at}),
        tier(b, "A", at),
        tier(b, "A", at + timedelta(seconds=1)),  # newer, same tier: its time is kept
        tier(unknown, "A", at),
    ]
    async with session_of() as session:
        await service.apply_insights(RequestContext.system(session, app.state), batch)

    async def updates() -> dict[str, list[list[str]]]:
        async with app.state.engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT subject, data FROM outbox WHERE type = 'kehu.customer.updated.v1' "
                    "AND subject = ANY(:ids) ORDER BY id"
                ),
                {"ids": [a, b, str(unknown)]},
            )
            found: dict[str, list[list[str]]] = {}
            for row in rows:
                found.setdefault(row.subject, []).append(row.data["changed_fields"])
            return found

    assert await updates() == {a: [["tier", "lifecycle_stage"]], b: [["tier"]]}
    async with app.state.engine.connect() as conn:
        stored = {
            str(r.customer_id): r
            for r in await conn.execute(
                sa.text(
                    "SELECT customer_id, tier, tier_changed_at, lifecycle_stage "
                    "FROM customer_insights WHERE customer_id = ANY(:ids)"
                ),
                {"ids": [a, b, str(unknown)]},
            )
        }
    assert (stored[a].tier, stored[a].tier_changed_at, stored[a].lifecycle_stage) == (
        "B",
        at,
        "repeat",
    )
    assert (stored[b].tier, stored[b].tier_changed_at) == ("A", at + timedelta(seconds=1))
    assert stored[str(unknown)].tier == "A"

    # The same tier again, newer: stored, but nothing visible changed.
    async with session_of() as session:
        ctx = RequestContext.system(session, app.state)
        await service.apply_insights(ctx, [tier(a, "B", at + timedelta(minutes=1))])
    assert await updates() == {a: [["tier", "lifecycle_stage"]], b: [["tier"]]}
    body = (await client.get(f"/customers/{a}", headers=admin)).json()
    assert (body["insights"]["tier"], body["insights"]["lifecycle_stage"]) == ("B", "repeat")
