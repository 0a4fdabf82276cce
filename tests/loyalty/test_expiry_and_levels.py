"""Time-driven behaviour through the jobs at the app's clock: expiry takes the oldest lots and
is announced 30 days ahead, once; levels go up at once on the purchase that crosses a
threshold and down by one level at most at each monthly evaluation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared.context import ManualClock
from tests.loyalty.conftest import (
    ADMIN,
    events_of,
    headers,
    ledger,
    member,
    publish,
    purchase,
    redeem,
    refund,
    run_jobs,
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def test_expiry_takes_the_oldest_lots_at_the_end_of_the_month_and_is_announced_once(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    clock.set(at(2031, 1, 15, 10))
    await publish(app, producer, purchase(customer, "100.00", clock.now()))
    clock.set(at(2031, 3, 10, 10))
    await publish(app, producer, purchase(customer, "100.00", clock.now()))
    clock.set(at(2031, 3, 20))
    assert (await redeem(client, customer, points=30)).status_code == 201
    lots = (await ledger(client, customer))["lots"]
    assert [(lot["remaining"], lot["expires_at"][:10]) for lot in lots] == [
        (70, "2032-02-01"),  # earned in January 2031: expires at the end of January 2032
        (100, "2032-04-01"),
    ]

    clock.set(at(2032, 1, 1))
    await run_jobs(app)
    assert await events_of(app, "points_expiring", customer) == []
    clock.set(at(2032, 1, 5))
    await run_jobs(app)
    await run_jobs(app)
    [notice] = await events_of(app, "points_expiring", customer)
    assert notice["points"] == 70 and notice["expires_at"].startswith("2032-02-01")

    clock.set(at(2032, 1, 31, 23, 59))
    await run_jobs(app)
    assert (await member(client, customer))["balance"]["available"] == 170
    clock.set(at(2032, 2, 1))
    await run_jobs(app)
    await run_jobs(app)  # a second replica, or a second pass: nothing more
    book = await ledger(client, customer)
    assert [(e["kind"], e["points"]) for e in book["items"]] == [
        ("earn", 100),
        ("earn", 100),
        ("redeem", -30),
        ("expire", -70),
    ]
    assert [(lot["remaining"], lot["expires_at"][:10]) for lot in book["lots"]] == [
        (100, "2032-04-01")
    ]
    assert [e["points"] for e in await events_of(app, "points_expired", customer)] == [70]


async def test_the_purchase_that_crosses_a_threshold_upgrades_at_once(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    await publish(app, producer, purchase(customer, "1500.00", clock.now()))
    assert (await member(client, customer))["level"] == "member"
    crossing = purchase(customer, "600.00", clock.now())
    await publish(app, producer, crossing)
    body = await member(client, customer)
    assert (body["level"], body["earned_in_window"]) == ("silver", 2100)
    [change] = await events_of(app, "level_changed", customer)
    assert (change["previous_level"], change["level"], change["direction"]) == (
        "member",
        "silver",
        "up",
    )
    # The crossing purchase earned at the old multiplier; the next one earns x1.25.
    await publish(app, producer, purchase(customer, "100.00", clock.now()))
    earned = [e["points"] for e in (await ledger(client, customer))["items"]]
    assert earned == [1500, 600, 125]

    # A refund lowers the points earned but not the level: that waits for the evaluation.
    await publish(app, producer, refund(crossing, "600.00", clock.now()))
    body = await member(client, customer)
    assert (body["level"], body["earned_in_window"]) == ("silver", 1625)


async def test_the_monthly_evaluation_moves_down_one_level_at_a_time(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    clock.set(at(2033, 5, 10))
    await publish(app, producer, purchase(customer, "10000.00", clock.now()))
    assert (await member(client, customer))["level"] == "gold"  # past two thresholds at once
    clock.set(at(2033, 5, 28))
    await run_jobs(app)
    assert (await member(client, customer))["level"] == "gold"

    clock.set(at(2034, 6, 2))  # nothing earned in the trailing 12 months
    await run_jobs(app)
    body = await member(client, customer)
    assert (body["level"], body["earned_in_window"]) == ("silver", 0)
    clock.set(at(2034, 6, 20))
    await run_jobs(app)  # evaluated once a month
    assert (await member(client, customer))["level"] == "silver"
    clock.set(at(2034, 7, 1))
    await run_jobs(app)
    assert (await member(client, customer))["level"] == "member"
    changes = await events_of(app, "level_changed", customer)
    assert [(e["level"], e["direction"]) for e in changes] == [
        ("gold", "up"),
        ("silver", "down"),
        ("member", "down"),
    ]


async def test_levels_are_replaced_whole_and_need_a_starting_level(
    client: httpx.AsyncClient,
) -> None:
    levels = [
        {"code": "base", "name": "Base", "threshold": 0, "multiplier": "1"},
        {"code": "vip", "name": "VIP", "threshold": 500, "multiplier": "2"},
    ]
    put = await client.put("/levels", json={"levels": levels}, headers=ADMIN)
    assert put.status_code == 200, put.text
    read = await client.get("/levels", headers=headers("analyst"))
    assert [(x["code"], x["threshold"]) for x in read.json()] == [("base", 0), ("vip", 500)]
    no_start = await client.put("/levels", json={"levels": levels[1:]}, headers=ADMIN)
    assert no_start.status_code == 422 and no_start.json()["type"].endswith("/invalid-levels")
    twice = await client.put("/levels", json={"levels": [levels[0], levels[0]]}, headers=ADMIN)
    assert twice.status_code == 422
    agent = await client.put("/levels", json={"levels": levels}, headers=headers("agent"))
    assert agent.status_code == 403
