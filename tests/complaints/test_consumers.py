"""Point 8: tier changes, merges and erasures consumed from kehu.analytics / kehu.customers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.complaints.models import inbox
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import CustomerErased, CustomerMerged
from shared.events.envelope import to_kafka
from shared.events.registry import EventContract
from shared.kafka import new_producer
from shared.outbox import build_event
from shared.settings import ServiceSettings
from tests.complaints.conftest import ADMIN, file_complaint, walk
from tests.helpers import eventually

CONSUMER_TIMEOUT = 60  # the group's first join on Tansu takes a few seconds


@pytest.fixture(scope="module")
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(ServiceSettings(service_name="complaints-test"))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def publish(producer: AIOKafkaProducer, contract: EventContract) -> str:
    """Send an event the way the owning service's relay would; returns its id."""
    event = build_event(contract, "/kehu/test")
    key, value, headers = to_kafka(event)
    await producer.send_and_wait(contract.topic, value, key=key, headers=headers)
    return event.id


async def processed(app: FastAPI, event_id: str) -> bool:
    async with app.state.engine.connect() as conn:
        row = await conn.scalar(
            sa.select(inbox.c.status).where(
                inbox.c.consumer == "complaints", inbox.c.event_id == event_id
            )
        )
    return row == "processed"


async def read(client: httpx.AsyncClient, complaint_id: str) -> dict[str, Any]:
    return (await client.get(f"/complaints/{complaint_id}", headers=ADMIN)).json()


def tier_changed(customer: uuid.UUID, tier: str, at: datetime) -> CustomerTierChanged:
    return CustomerTierChanged(
        customer_id=customer,
        occurred_at=at,
        tier=tier,  # type: ignore[arg-type]
        previous_tier=None,
        contribution=Decimal("100.00"),
    )


async def test_tier_change_moves_the_targets_of_open_complaints_only(
    client: httpx.AsyncClient, app: FastAPI, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    open_one = await file_complaint(client, customer_id=customer, severity="medium")
    closed_one = await file_complaint(client, customer_id=customer, severity="medium")
    await walk(client, closed_one["id"], "acknowledged", "investigating", "resolved")
    assert open_one["sla"]["first_response_target_s"] == 48 * 3600  # medium × C

    now = datetime.now(UTC)
    newer = await publish(producer, tier_changed(customer, "A", now))
    await eventually(lambda: processed(app, newer), timeout=CONSUMER_TIMEOUT)
    body = await read(client, open_one["id"])
    assert body["tier"] == "A"
    assert body["sla"]["first_response_target_s"] == 24 * 3600  # medium × A
    assert body["sla"]["first_response_due_at"] < open_one["sla"]["first_response_due_at"]
    assert (await read(client, closed_one["id"]))["tier"] == "C"

    # An older tier that arrives late does not win; new complaints use the latest tier.
    older = await publish(producer, tier_changed(customer, "B", now - timedelta(days=1)))
    await eventually(lambda: processed(app, older), timeout=CONSUMER_TIMEOUT)
    assert (await read(client, open_one["id"]))["tier"] == "A"
    assert (await file_complaint(client, customer_id=customer))["tier"] == "A"


async def test_merge_repoints_complaints_of_the_duplicate_now_and_later(
    client: httpx.AsyncClient, app: FastAPI, producer: AIOKafkaProducer
) -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    before = await file_complaint(client, customer_id=duplicate)
    event_id = await publish(
        producer,
        CustomerMerged(
            customer_id=survivor, occurred_at=datetime.now(UTC), merged_customer_id=duplicate
        ),
    )
    await eventually(lambda: processed(app, event_id), timeout=CONSUMER_TIMEOUT)
    assert (await read(client, before["id"]))["customer_id"] == str(survivor)
    after = await file_complaint(client, customer_id=duplicate)
    assert after["customer_id"] == str(survivor)
    listed = (
        await client.get("/complaints", params={"customer_id": str(survivor)}, headers=ADMIN)
    ).json()
    assert {c["id"] for c in listed["items"]} == {before["id"], after["id"]}


async def test_erasure_scrubs_pii_and_free_text_but_keeps_facts_and_ratings(
    client: httpx.AsyncClient, app: FastAPI, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    c = await file_complaint(client, customer_id=customer, category="billing", severity="high")
    base = f"/complaints/{c['id']}"
    await client.post(f"{base}/notes", json={"body": "Customer said X"}, headers=ADMIN)
    await client.post(
        f"{base}/actions",
        json={"kind": "corrective", "description": "Refund Maija", "owner": "ops"},
        headers=ADMIN,
    )
    await client.post(
        f"{base}/transitions",
        json={"to_status": "acknowledged", "note": "Spoke to Maija"},
        headers=ADMIN,
    )
    await walk(client, c["id"], "investigating", "resolved")
    await client.post(f"{base}/rating", json={"rating": 2, "comment": "Slow"}, headers=ADMIN)
    resolved = await read(client, c["id"])

    event_id = await publish(
        producer, CustomerErased(customer_id=customer, occurred_at=datetime.now(UTC))
    )
    await eventually(lambda: processed(app, event_id), timeout=CONSUMER_TIMEOUT)

    body = await read(client, c["id"])
    assert body["complainant"] is None
    assert (body["subject"], body["description"], body["resolution"]) == (None, None, None)
    assert body["rating_comment"] is None
    assert (body["category"], body["severity"], body["rating"]) == ("billing", "high", 2)
    assert body["received_at"] == resolved["received_at"]
    assert body["resolved_at"] == resolved["resolved_at"]
    notes = (await client.get(f"{base}/notes", headers=ADMIN)).json()
    assert [n["body"] for n in notes] == [None]
    history = (await client.get(f"{base}/transitions", headers=ADMIN)).json()
    assert all(h["note"] is None for h in history)
    actions = (await client.get(f"{base}/actions", headers=ADMIN)).json()
    assert [a["description"] for a in actions] == [None]

    # A complaint filed after the erasure was processed keeps no personal data either.
    late = await file_complaint(client, customer_id=customer, category="delivery")
    assert (late["complainant"], late["subject"], late["description"]) == (None, None, None)
    assert late["category"] == "delivery"
