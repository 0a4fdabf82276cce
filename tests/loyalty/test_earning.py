"""Earning from purchases, pending through the return window; reversals by refunds and
cancellations; every Kafka record delivered twice changes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.loyalty.service import SKIPPED
from shared.context import ManualClock
from shared.outbox import build_event
from tests.helpers import eventually
from tests.loyalty.conftest import (
    ADMIN,
    cancellation,
    ledger,
    member,
    processed,
    publish,
    purchase,
    redeem,
    refund,
    send,
)


async def test_a_purchase_earns_pending_points_that_become_available_after_the_window(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    bought = purchase(customer, "1234.56", clock.now())
    await publish(app, producer, bought)  # every record twice

    body = await member(client, customer)
    assert body["level"] == "member"
    assert body["balance"] == {"available": 0, "pending": 1234, "debt": 0, "spendable": 0}
    refused = await redeem(client, customer, points=1)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/insufficient-points")
    assert (refused.json()["spendable"], refused.json()["needed"]) == (0, 1)

    clock.advance(days=7, seconds=-1)
    assert (await member(client, customer))["balance"]["pending"] == 1234
    clock.advance(seconds=1)
    body = await member(client, customer)
    assert body["balance"] == {"available": 1234, "pending": 0, "debt": 0, "spendable": 1234}

    book = await ledger(client, customer)
    assert [(e["kind"], e["points"]) for e in book["items"]] == [("earn", 1234)]
    bogus = await client.get(
        f"/members/{customer}/ledger", params={"cursor": "bm90LWpzb24"}, headers=ADMIN
    )
    assert bogus.status_code == 400
    [lot] = book["lots"]
    assert (lot["points"], lot["remaining"], lot["status"]) == (1234, 1234, "available")

    # The same purchase published again under a new event id (a replay) earns nothing more.
    again = build_event(bought, "/kehu/test")
    await send(producer, again)
    await eventually(lambda: processed(app, again.id), timeout=60)
    assert (await ledger(client, customer))["entries_total"] == 1234


async def test_a_purchase_in_another_currency_earns_by_its_converted_amount(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    bought = purchase(customer, "100.00", clock.now(), currency="USD").model_copy(
        update={
            "reporting_currency": "CNY",
            "fx_rate": Decimal("7.1234"),
            "reporting_amount": Decimal("712.34"),
        }
    )
    await publish(app, producer, bought)
    body = await member(client, customer)
    assert body["balance"]["pending"] == 712  # floor(712.34 CNY x 1 point per unit)


async def test_a_purchase_with_no_amount_in_the_points_currency_earns_nothing_and_is_counted(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    before = SKIPPED.labels("currency")._value.get()
    await publish(app, producer, purchase(customer, "500.00", clock.now(), currency="USD"))
    assert SKIPPED.labels("currency")._value.get() == before + 1  # the duplicate is not
    response = await client.get(f"/members/{customer}", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/member-not-found")


async def test_a_partial_refund_reverses_proportionally_and_a_cancellation_the_rest(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    bought = purchase(customer, "1000.00", clock.now())
    await publish(app, producer, bought)
    first = refund(bought, "250.00", clock.now())
    await publish(app, producer, first)
    body = await member(client, customer)
    assert body["balance"]["pending"] == 750

    # A third of the rest: floor(1000 x 583.33 / 1000) = 583 reversed in all.
    await publish(app, producer, refund(bought, "333.33", clock.now()))
    assert (await member(client, customer))["balance"]["pending"] == 417
    # The first refund again under a new event id changes nothing (unique on the refund).
    await send(producer, build_event(first, "/kehu/test"))
    await publish(app, producer, cancellation(bought, clock.now()))
    await publish(app, producer, cancellation(bought, clock.now()))  # a second cancel event

    book = await ledger(client, customer)
    assert [(e["kind"], e["reason"], e["points"]) for e in book["items"]] == [
        ("earn", "purchase", 1000),
        ("reverse", "refund", -250),
        ("reverse", "refund", -333),
        ("reverse", "cancellation", -417),
    ]
    assert book["balance"] == {"available": 0, "pending": 0, "debt": 0, "spendable": 0}
    assert book["lots"] == []
    assert (await member(client, customer))["earned_in_window"] == 0


async def test_a_reversal_of_spent_points_takes_other_lots_then_goes_below_zero(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    first = purchase(customer, "100.00", clock.now())
    await publish(app, producer, first)
    clock.advance(days=8)
    assert (await redeem(client, customer, points=80)).status_code == 201
    second = purchase(customer, "30.00", clock.now())
    await publish(app, producer, second)

    # 100 to take back: 20 left in the purchase's lot, 30 from the other lot, 50 owed.
    await publish(app, producer, refund(first, "100.00", clock.now()))
    book = await ledger(client, customer)
    reversal = book["items"][-1]
    assert (reversal["kind"], reversal["points"]) == ("reverse", -100)
    assert (reversal["uncovered"], reversal["negative"]) == (50, True)
    assert book["balance"] == {"available": 0, "pending": 0, "debt": 50, "spendable": -50}

    # New points settle the debt first.
    third = purchase(customer, "80.00", clock.now())
    await publish(app, producer, third)
    clock.advance(days=8)
    assert (await member(client, customer))["balance"]["spendable"] == 30
    assert (await redeem(client, customer, points=31)).status_code == 409
    assert (await redeem(client, customer, points=30)).status_code == 201
    book = await ledger(client, customer)
    assert book["balance"] == {"available": 0, "pending": 0, "debt": 0, "spendable": 0}
