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

from services.profiles import repository as repo
from services.profiles import service
from services.profiles.config import Settings
from services.profiles.service import Insight
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

    updates = await updates_of(app, cid)
    assert [u.changed_fields for u in updates] == [
        ["tier"],
        ["churn_risk_level"],
        ["lifecycle_stage"],
    ]
    last = updates[-1].insights
    assert last is not None
    assert (last.tier, last.lifecycle_stage, last.churn_risk_level) == ("B", "repeat", "high")
    assert updates[-1].dimensions.customer_number == customer["customer_number"]


async def updates_of(app: FastAPI, customer_id: str) -> list[CustomerUpdated]:
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT data FROM outbox WHERE type = 'kehu.customer.updated.v1' "
                "AND subject = :cid ORDER BY id"
            ),
            {"cid": customer_id},
        )
        return [CustomerUpdated.model_validate(r.data) for r in rows]


def tier(customer_id: Any, at: datetime, value: str) -> Insight:
    return customer_id, "tier_changed_at", {"tier": value, "tier_changed_at": at}


def lifecycle(customer_id: Any, at: datetime, stage: str) -> Insight:
    return (
        customer_id,
        "lifecycle_changed_at",
        {"lifecycle_stage": stage, "lifecycle_changed_at": at},
    )


def churn(customer_id: Any, at: datetime, score: int, level: str) -> Insight:
    values = {
        "churn_risk_score": score,
        "churn_risk_level": level,
        "churn_risk_reasons": ["no purchase"],
        "churn_risk_changed_at": at,
    }
    return customer_id, "churn_risk_changed_at", values


async def test_a_batch_of_insights_applies_in_order_with_one_update_per_visible_change(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    session_of: Callable[[], Any],
) -> None:
    """What a fetched batch does (`consumers.batch_handler`): events for several customers,
    an older one after a newer one, a change within a level and an unknown customer."""
    a = await create_customer(client, admin)
    b = await create_customer(client, admin)
    unknown = uuid.uuid4()
    now = datetime.now(UTC)
    async with session_of() as session:
        await service.apply_insights(
            RequestContext.system(session, app.state),
            [
                tier(a["id"], now, "A"),
                lifecycle(b["id"], now, "loyal"),
                tier(a["id"], now - timedelta(hours=1), "C"),  # older: ignored
                churn(a["id"], now, 72, "high"),
                churn(a["id"], now + timedelta(seconds=1), 80, "high"),  # within its level
                tier(unknown, now, "B"),  # stored; no customer to update
                lifecycle(b["id"], now + timedelta(seconds=1), "loyal"),  # the same stage
            ],
        )
    body = (await client.get(f"/customers/{a['id']}", headers=admin)).json()
    assert body["insights"] == {
        "tier": "A",
        "lifecycle_stage": None,
        "churn_risk": {"score": 80, "level": "high", "reasons": ["no purchase"]},
    }
    assert body["updated_at"] > a["updated_at"]
    updates = await updates_of(app, a["id"])
    assert [u.changed_fields for u in updates] == [["tier"], ["churn_risk_level"]]
    assert [(u.insights.tier, u.insights.churn_risk_level) for u in updates if u.insights] == [
        ("A", None),
        ("A", "high"),
    ]
    assert updates[0].dimensions.customer_number == a["customer_number"]
    assert [u.changed_fields for u in await updates_of(app, b["id"])] == [["lifecycle_stage"]]
    assert await updates_of(app, str(unknown)) == []
    async with session_of() as session:
        stored = await session.execute(
            sa.text("SELECT tier FROM customer_insights WHERE customer_id = :id"), {"id": unknown}
        )
        assert stored.scalar_one() == "B"

    # An older lifecycle stage in a later batch changes nothing and publishes nothing.
    async with session_of() as session:
        ctx = RequestContext.system(session, app.state)
        await service.apply_insights(ctx, [lifecycle(b["id"], now - timedelta(days=1), "new")])
    b_read = (await client.get(f"/customers/{b['id']}", headers=admin)).json()
    assert b_read["insights"]["lifecycle_stage"] == "loyal"
    assert len(await updates_of(app, b["id"])) == 1

    # A newer tier in a later batch replaces the stored one and keeps the other kinds.
    async with session_of() as session:
        ctx = RequestContext.system(session, app.state)
        await service.apply_insights(ctx, [tier(a["id"], now + timedelta(hours=1), "B")])
    a_read = (await client.get(f"/customers/{a['id']}", headers=admin)).json()
    assert a_read["insights"]["tier"] == "B"
    assert a_read["insights"]["churn_risk"]["score"] == 80
    last = (await updates_of(app, a["id"]))[-1]
    assert last.changed_fields == ["tier"]
    assert last.insights is not None
    assert (last.insights.tier, last.insights.churn_risk_level) == ("B", "high")


async def test_writing_insights_keeps_each_kind_that_is_newer_in_the_table(
    app: FastAPI, session_of: Callable[[], Any]
) -> None:
    """The write's own guard, for a writer that got in between the lock and the write: each
    kind is replaced only by one at least as new, the others still apply."""
    customer_id, now = uuid.uuid4(), datetime.now(UTC)
    empty = dict.fromkeys(repo.INSIGHT_COLUMNS)
    async with session_of() as session:
        await repo.write_insights(
            session, [{**empty, "customer_id": customer_id, **tier(customer_id, now, "A")[2]}]
        )
    stale = {
        **empty,
        "customer_id": customer_id,
        **tier(customer_id, now - timedelta(hours=1), "C")[2],
        **lifecycle(customer_id, now, "repeat")[2],
    }
    async with session_of() as session:
        await repo.write_insights(session, [stale])
        row = (await repo.lock_insights(session, [customer_id]))[customer_id]
    assert (row["tier"], row["tier_changed_at"]) == ("A", now)
    assert row["lifecycle_stage"] == "repeat"
