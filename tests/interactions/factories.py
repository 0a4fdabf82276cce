"""Factories and probes for the interactions tests: unique data per test, real DB reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from services.interactions.models import outbox
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.registry import EventContract
from shared.kafka import new_producer
from shared.settings import ServiceSettings


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.isoformat()


def interaction_body(customer_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id or uuid.uuid4()),
        "channel": "phone",
        "direction": "outbound",
        "occurred_at": iso(now() - timedelta(hours=1)),
        "contact_person": "Li Wei",
        "subject": "Quarterly review",
        "summary": "Discussed the renewal; customer wants a quote.",
        "outcome": "follow_up_needed",
        "agent_id": "agent-1",
        "duration_seconds": 300,
        **overrides,
    }


def purchase_body(customer_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id or uuid.uuid4()),
        "external_ref": f"SO-{uuid.uuid4().hex[:10]}",
        "occurred_at": iso(now() - timedelta(days=1)),
        "amount": "200.00",
        "cost": "150.00",
        "currency": "CNY",
        "status": "paid",
        "items": [{"sku": "SKU-1", "quantity": "2", "unit_price": "100.00"}],
        **overrides,
    }


def survey_body(customer_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id or uuid.uuid4()),
        "channel": "email",
        "scores": {"overall": 5, "service": 4, "price": 3},
        "nps": 9,
        "effort": 2,
        "comment": "Fast delivery, friendly staff.",
        **overrides,
    }


def followup_body(customer_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id or uuid.uuid4()),
        "kind": "needs_check",
        "due_at": iso(now() + timedelta(days=2)),
        "assignee_id": f"agent-{uuid.uuid4().hex[:6]}",
        "note": "Ask about the new line.",
        **overrides,
    }


async def events(app: FastAPI, event_name: str, **match: str) -> list[dict[str, Any]]:
    """The data of outbox events of one type whose fields equal `match`."""
    t = outbox
    stmt = sa.select(t.c.data).where(t.c.type == f"kehu.{event_name}.v1")
    for key, value in match.items():
        stmt = stmt.where(t.c.data[key].astext == value)
    async with app.state.engine.connect() as conn:
        return [row.data for row in (await conn.execute(stmt)).all()]


async def scalar(app: FastAPI, sql: str, **params: Any) -> Any:
    async with app.state.engine.connect() as conn:
        return (await conn.execute(sa.text(sql), params)).scalar()


async def produce(settings: ServiceSettings, *contracts: EventContract) -> list[str]:
    """Publish events as another service would (binary CloudEvents, key = customer id)."""
    ids = []
    producer = new_producer(settings)
    await producer.start()
    try:
        for contract in contracts:
            event = CloudEvent(
                source="/kehu/test",
                type=contract.event_type(),
                subject=contract.partition_key(),
                partitionkey=contract.partition_key(),
                data=contract.model_dump(mode="json"),
            )
            key, value, headers = to_kafka(event)
            await producer.send_and_wait(contract.topic, value, key=key, headers=headers)
            ids.append(event.id)
    finally:
        await producer.stop()
    return ids


async def processed(app: FastAPI, event_id: str) -> bool:
    """Whether the service's consumer has committed the effect of this event."""
    found = await scalar(app, "SELECT count(*) FROM inbox WHERE event_id = :id", id=event_id)
    return bool(found)
