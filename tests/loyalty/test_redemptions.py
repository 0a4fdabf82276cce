"""Redemptions: all or nothing, never more than the balance under any race; cancellation gives
the points back to the lots they came from; rewards, stock, limits and single-use coupons."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.loyalty.models import lots
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
)


async def funded(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: ManualClock,
    producer: AIOKafkaProducer,
    *amounts: str,
) -> uuid.UUID:
    """A member with one available lot per amount (earned a day apart, oldest first)."""
    customer = uuid.uuid4()
    start = clock.now()
    for n, amount in enumerate(amounts):
        await publish(app, producer, purchase(customer, amount, start + timedelta(days=n)))
    clock.advance(days=len(amounts) + 8)
    return customer


async def test_fifty_concurrent_redemptions_spend_exactly_the_balance(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = await funded(app, client, clock, producer, "300.00", "200.00")
    assert (await member(client, customer))["balance"]["spendable"] == 500

    answers = await asyncio.gather(*(redeem(client, customer, points=100) for _ in range(50)))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 5, codes
    assert codes.count(409) == 45, codes
    assert all(
        a.json()["type"].endswith("/insufficient-points") for a in answers if a.status_code == 409
    )

    book = await ledger(client, customer)
    assert book["balance"] == {"available": 0, "pending": 0, "debt": 0, "spendable": 0}
    assert [e["kind"] for e in book["items"]].count("redeem") == 5
    async with app.state.engine.connect() as conn:
        remaining = (
            (await conn.execute(sa.select(lots.c.remaining).where(lots.c.customer_id == customer)))
            .scalars()
            .all()
        )
    assert sorted(remaining) == [0, 0]
    assert len(await events_of(app, "points_redeemed", customer)) == 5


async def test_a_redemption_takes_the_soonest_expiring_lots_and_cancelling_restores_them(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    # Earned a month apart: the first lot expires a month before the second.
    customer = uuid.uuid4()
    start = clock.now()
    await publish(app, producer, purchase(customer, "100.00", start - timedelta(days=40)))
    await publish(app, producer, purchase(customer, "100.00", start - timedelta(days=9)))
    before = {lot["id"]: lot for lot in (await ledger(client, customer))["lots"]}
    oldest, newest = sorted(before, key=lambda i: before[i]["expires_at"])
    assert before[oldest]["expires_at"] < before[newest]["expires_at"]

    made = await redeem(client, customer, points=150)
    assert made.status_code == 201, made.text
    after = {lot["id"]: lot["remaining"] for lot in (await ledger(client, customer))["lots"]}
    assert after == {newest: 50}  # the oldest lot is spent first, whole

    cancelled = await client.post(f"/redemptions/{made.json()['id']}/cancel", headers=ADMIN)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    book = await ledger(client, customer)
    assert {lot["id"]: lot["remaining"] for lot in book["lots"]} == {oldest: 100, newest: 100}
    assert [(e["kind"], e["points"]) for e in book["items"]][-2:] == [
        ("redeem", -150),
        ("restore", 150),
    ]
    again = await client.post(f"/redemptions/{made.json()['id']}/cancel", headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/redemption-already-cancelled")
    assert len(await events_of(app, "redemption_cancelled", customer)) == 1


async def test_an_idempotency_key_redeems_once(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = await funded(app, client, clock, producer, "100.00")
    body = {"customer_id": str(customer), "points": 60}
    key = {**ADMIN, "Idempotency-Key": f"redeem-{uuid.uuid4()}"}
    first = await client.post("/redemptions", json=body, headers=key)
    second = await client.post("/redemptions", json=body, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert (await member(client, customer))["balance"]["spendable"] == 40


def coffee(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "10 CNY coffee coupon",
        "kind": "coupon",
        "points_cost": 100,
        "stock": 2,
        "per_customer_limit": 1,
        "coupon_valid_days": 30,
        **overrides,
    }


async def test_a_coupon_reward_issues_unique_single_use_codes_within_stock_and_limits(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    code = f"COFFEE-{uuid.uuid4().hex[:6]}"
    created = await client.put(f"/rewards/{code}", json=coffee(), headers=ADMIN)
    assert created.status_code == 201, created.text
    assert (await client.put(f"/rewards/{code}", json=coffee(), headers=ADMIN)).status_code == 428
    agent = await client.put(f"/rewards/{code}", json=coffee(), headers=headers("agent"))
    assert agent.status_code == 403

    one, two, three = [await funded(app, client, clock, producer, "300.00") for _ in range(3)]
    first = await redeem(client, one, reward_code=code)
    assert first.status_code == 201, first.text
    coupon = first.json()["coupon"]
    assert coupon["status"] == "issued" and coupon["code"].startswith("LY-")
    limit = await redeem(client, one, reward_code=code)
    assert limit.status_code == 409 and limit.json()["type"].endswith("/reward-limit-reached")
    second = await redeem(client, two, reward_code=code)
    assert second.status_code == 201
    assert second.json()["coupon"]["code"] != coupon["code"]
    sold_out = await redeem(client, three, reward_code=code)
    assert sold_out.status_code == 409 and sold_out.json()["type"].endswith("/reward-unavailable")
    assert (await member(client, three))["balance"]["spendable"] == 300  # nothing taken

    used = await client.post(f"/coupons/{coupon['code']}/use", headers=ADMIN)
    assert used.status_code == 200 and used.json()["status"] == "used"
    twice = await client.post(f"/coupons/{coupon['code']}/use", headers=ADMIN)
    assert twice.status_code == 409 and twice.json()["type"].endswith("/coupon-already-used")
    keep = await client.post(f"/redemptions/{first.json()['id']}/cancel", headers=ADMIN)
    assert keep.status_code == 409  # its coupon was used

    # Cancelling the unused one voids its coupon and gives the stock back.
    assert (
        await client.post(f"/redemptions/{second.json()['id']}/cancel", headers=ADMIN)
    ).status_code == 200
    void = await client.post(f"/coupons/{second.json()['coupon']['code']}/use", headers=ADMIN)
    assert void.status_code == 409 and void.json()["type"].endswith("/coupon-not-usable")
    assert (await redeem(client, three, reward_code=code)).status_code == 201

    read = await client.get(f"/rewards/{code}", headers=ADMIN)
    assert read.json()["stock"] == 0
    if_match = {**ADMIN, "If-Match": read.headers["ETag"]}
    changed = await client.put(f"/rewards/{code}", json=coffee(stock=10), headers=if_match)
    assert changed.status_code == 200 and changed.json()["stock"] == 10
    stale = await client.put(f"/rewards/{code}", json=coffee(), headers=if_match)
    assert stale.status_code == 412


async def test_an_expired_coupon_cannot_be_used_and_a_reward_outside_its_window_not_redeemed(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = await funded(app, client, clock, producer, "500.00")
    code = f"TEA-{uuid.uuid4().hex[:6]}"
    await client.put(
        f"/rewards/{code}", json=coffee(stock=None, per_customer_limit=None), headers=ADMIN
    )
    issued = (await redeem(client, customer, reward_code=code)).json()["coupon"]
    clock.advance(days=31)
    late = await client.post(f"/coupons/{issued['code']}/use", headers=ADMIN)
    assert late.status_code == 409 and late.json()["type"].endswith("/coupon-not-usable")

    ended = f"OLD-{uuid.uuid4().hex[:6]}"
    window = {"valid_until": (clock.now() - timedelta(days=1)).isoformat()}
    await client.put(f"/rewards/{ended}", json=coffee(**window), headers=ADMIN)
    refused = await redeem(client, customer, reward_code=ended)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/reward-unavailable")
    missing = await redeem(client, customer, reward_code="NO-SUCH-REWARD")
    assert missing.status_code == 404
    both = await redeem(client, customer, reward_code=code, points=5)
    assert both.status_code == 422


async def test_adjustments_credit_spendable_lots_and_debit_no_more_than_the_balance(
    client: httpx.AsyncClient,
) -> None:
    customer = uuid.uuid4()
    await client.post("/members", json={"customer_id": str(customer)}, headers=ADMIN)
    url = f"/members/{customer}/adjustments"
    credit = {"points": 200, "reason": "goodwill", "reference": "TICKET-1"}
    made = await client.post(url, json=credit, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["balance"]["available"] == 200
    too_much = await client.post(url, json={"points": -201, "reason": "correction"}, headers=ADMIN)
    assert too_much.status_code == 409
    debit = await client.post(url, json={"points": -150, "reason": "correction"}, headers=ADMIN)
    assert debit.json()["balance"]["available"] == 50
    agent = await client.post(url, json=credit, headers=headers("agent"))
    assert agent.status_code == 403
    free_text = await client.post(url, json={**credit, "reference": "called Li Wei"}, headers=ADMIN)
    assert free_text.status_code == 422
    book = await ledger(client, customer)
    assert [(e["kind"], e["points"], e["reason"]) for e in book["items"]] == [
        ("adjust", 200, "goodwill"),
        ("adjust", -150, "correction"),
    ]
