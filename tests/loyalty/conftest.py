"""The loyalty tests' app (real PostgreSQL and broker), its clock, and event publishing.

One app consumes for the whole run (its group joins the broker once); its clock is a
`ManualClock` that each test starts at the real now and moves instead of sleeping. The
periodic jobs are off: tests run a pass with `run_jobs` at the clock's time.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.loyalty.config import Settings
from services.loyalty.main import create_app, jobs_pass
from services.loyalty.models import inbox, outbox
from shared.auth import issue_token
from shared.context import ManualClock
from shared.contracts.interactions import PurchaseCancelled, PurchaseRecorded, PurchaseRefunded
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.registry import REGISTRY, EventContract
from shared.kafka import new_producer
from shared.outbox import build_event
from shared.settings import ServiceSettings
from tests.helpers import eventually, serve

CONSUMER_TIMEOUT = 60.0  # the group's first join on Tansu takes a few seconds
FAST: dict[str, Any] = {"outbox_poll_interval_s": 0.2, "jobs_enabled": False}
DEFAULT_LEVELS = [
    {"code": "member", "name": "Member", "threshold": 0, "multiplier": "1"},
    {"code": "silver", "name": "Silver", "threshold": 2000, "multiplier": "1.25"},
    {"code": "gold", "name": "Gold", "threshold": 10000, "multiplier": "1.5"},
]


def headers(role: str = "admin", subject: str = "loyalty-tests") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(ServiceSettings(), role, subject=subject)}"}


ADMIN = headers()


@pytest.fixture(scope="session")
async def consuming() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(**FAST))
    app.state.clock = ManualClock()
    async for client in serve(app):
        yield app, client


@pytest.fixture
async def app(consuming: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return consuming[0]


@pytest.fixture
async def client(consuming: tuple[FastAPI, httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    """The client, with the programme's default levels and the clock at the real now."""
    app, client = consuming
    app.state.clock.set(datetime.now(UTC))
    response = await client.put("/levels", json={"levels": DEFAULT_LEVELS}, headers=ADMIN)
    assert response.status_code == 200, response.text
    yield client


@pytest.fixture
def clock(app: FastAPI) -> ManualClock:
    clock: ManualClock = app.state.clock
    return clock


@pytest.fixture(scope="session")
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(ServiceSettings(service_name="loyalty-test"))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def processed(app: FastAPI, event_id: str) -> bool:
    async with app.state.engine.connect() as conn:
        status = await conn.scalar(
            sa.select(inbox.c.status).where(
                inbox.c.consumer == "loyalty", inbox.c.event_id == event_id
            )
        )
    assert status != "dead_lettered", f"event {event_id} was dead-lettered"
    return status == "processed"


async def publish(
    app: FastAPI, producer: AIOKafkaProducer, *contracts: EventContract, copies: int = 2
) -> list[str]:
    """Send each event the way its owner's relay would, every record `copies` times (the
    broker redelivering), and wait until the consumer has applied them; their ids."""
    ids = []
    for contract in contracts:
        event = build_event(contract, "/kehu/test")
        ids.append(await send(producer, event, copies))
    for event_id in ids:
        await eventually(lambda e=event_id: processed(app, e), timeout=CONSUMER_TIMEOUT)
    return ids


async def send(producer: AIOKafkaProducer, event: CloudEvent, copies: int = 1) -> str:
    key, value, hdrs = to_kafka(event)
    for _ in range(copies):
        await producer.send_and_wait(REGISTRY.get(event.type).topic, value, key=key, headers=hdrs)
    return event.id


def purchase(
    customer: uuid.UUID,
    amount: str,
    at: datetime,
    currency: str = "CNY",
    purchase_id: uuid.UUID | None = None,
) -> PurchaseRecorded:
    return PurchaseRecorded(
        customer_id=customer,
        occurred_at=at,
        purchase_id=purchase_id or uuid.uuid4(),
        external_ref=f"SO-{uuid.uuid4().hex[:8]}",
        amount=Decimal(amount),
        cost=Decimal(amount) / 2,
        margin=Decimal(amount) / 2,
        currency=currency,
        status="paid",
    )


def refund(p: PurchaseRecorded, amount: str, at: datetime) -> PurchaseRefunded:
    return PurchaseRefunded(
        customer_id=p.customer_id,
        occurred_at=at,
        purchase_id=p.purchase_id,
        refund_id=uuid.uuid4(),
        amount=Decimal(amount),
        margin=Decimal(amount) / 2,
        currency=p.currency,
    )


def cancellation(p: PurchaseRecorded, at: datetime) -> PurchaseCancelled:
    return PurchaseCancelled(customer_id=p.customer_id, occurred_at=at, purchase_id=p.purchase_id)


async def run_jobs(app: FastAPI) -> int:
    """Passes of the periodic jobs at the app's clock until nothing is left to do."""
    total = 0
    while True:
        async with app.state.sessions.begin() as session:
            handled = await jobs_pass(app, session)
        total += handled
        if not handled:
            return total


async def member(client: httpx.AsyncClient, customer: uuid.UUID) -> dict[str, Any]:
    response = await client.get(f"/members/{customer}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def ledger(client: httpx.AsyncClient, customer: uuid.UUID) -> dict[str, Any]:
    response = await client.get(f"/members/{customer}/ledger", params={"limit": 200}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    balance = body["balance"]
    # The ledger explains the balance.
    assert body["entries_total"] == balance["available"] + balance["pending"] - balance["debt"]
    return body


async def redeem(client: httpx.AsyncClient, customer: uuid.UUID, **body: Any) -> httpx.Response:
    return await client.post(
        "/redemptions", json={"customer_id": str(customer), **body}, headers=ADMIN
    )


async def events_of(app: FastAPI, name: str, customer: uuid.UUID) -> list[dict[str, Any]]:
    """The data of the loyalty events of one type about the customer, oldest first."""
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(outbox.c.data)
            .where(
                outbox.c.type == f"kehu.loyalty.{name}.v1",
                outbox.c.data["customer_id"].astext == str(customer),
            )
            .order_by(outbox.c.id)
        )
        return [r.data for r in rows]
