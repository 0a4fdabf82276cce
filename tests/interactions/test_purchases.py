"""Purchases: idempotent per external_ref, decimal margins, refunds, cancellation."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import httpx
from fastapi import FastAPI

from shared.contracts import INTERACTIONS_TOPIC as TOPIC
from tests.helpers import eventually, header, read_topic
from tests.interactions.factories import events, purchase_body, scalar

PROBLEM = "application/problem+json"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")


async def test_same_purchase_posted_twice_is_stored_once(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body()
    first = await client.post("/purchases", json=body, headers=admin)
    again = await client.post("/purchases", json=body, headers=admin)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    stored = await scalar(
        app,
        "SELECT count(*) FROM purchases WHERE customer_id = :c AND external_ref = :r",
        c=uuid.UUID(body["customer_id"]),
        r=body["external_ref"],
    )
    assert stored == 1
    assert len(await events(app, "purchase.recorded", purchase_id=first.json()["id"])) == 1


async def test_concurrent_duplicates_store_one_purchase(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body()
    responses = await asyncio.gather(
        *(client.post("/purchases", json=body, headers=admin) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    recorded = await events(app, "purchase.recorded", external_ref=body["external_ref"])
    assert len(recorded) == 1


async def test_same_ref_with_a_different_amount_is_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body()
    first = await client.post("/purchases", json=body, headers=admin)
    clash = await client.post("/purchases", json={**body, "amount": "999.00"}, headers=admin)
    assert clash.status_code == 409
    assert clash.headers["content-type"] == PROBLEM
    assert clash.json()["existing_purchase_id"] == first.json()["id"]


async def test_same_ref_for_another_customer_is_a_new_purchase(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body()
    first = await client.post("/purchases", json=body, headers=admin)
    other = await client.post(
        "/purchases", json={**body, "customer_id": str(uuid.uuid4())}, headers=admin
    )
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.json()["id"] != other.json()["id"]


async def test_margin_is_amount_minus_cost_in_exact_decimals(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body(amount="100.10", cost="60.0525")
    response = await client.post("/purchases", json=body, headers=admin)
    assert response.status_code == 201, response.text
    purchase = response.json()
    assert (purchase["amount"], purchase["cost"], purchase["margin"]) == (
        "100.1000",
        "60.0525",
        "40.0475",
    )
    [event] = await events(app, "purchase.recorded", purchase_id=purchase["id"])
    assert (event["amount"], event["margin"], event["currency"]) == ("100.1000", "40.0475", "CNY")


async def test_money_with_more_than_four_decimals_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/purchases", json=purchase_body(amount="1.00001"), headers=admin)
    assert response.status_code == 422
    assert "body.amount" in [e["field"] for e in response.json()["errors"]]


async def test_refund_larger_than_the_purchase_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    purchase = (await client.post("/purchases", json=purchase_body(), headers=admin)).json()
    response = await client.post(
        f"/purchases/{purchase['id']}/refunds", json={"amount": "200.01"}, headers=admin
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["refundable_amount"] == "200.0000"
    assert [e["field"] for e in response.json()["errors"]] == ["body.amount"]
    after = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert after["refunded_amount"] == "0.0000"
    assert await events(app, "purchase.refunded", purchase_id=purchase["id"]) == []


async def test_a_time_with_no_utc_equivalent_is_422_not_a_server_error(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Found by the fuzzer: year 1 at +22:02 is before the first instant UTC can name."""
    purchase = (await client.post("/purchases", json=purchase_body(), headers=admin)).json()
    response = await client.post(
        f"/purchases/{purchase['id']}/refunds",
        json={"amount": "1.00", "occurred_at": "0001-01-01T19:59:56.946395+22:02"},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body.occurred_at"]
    after = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert after["refunded_amount"] == "0.0000"


async def test_partial_refunds_return_proportional_margin_and_stop_at_the_amount(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # amount 300, cost 200: margin 100, so each refunded unit gives back 1/3 of it.
    purchase = (
        await client.post("/purchases", json=purchase_body(amount="300", cost="200"), headers=admin)
    ).json()
    url = f"/purchases/{purchase['id']}/refunds"
    first = await client.post(url, json={"amount": "100", "reason": "damaged"}, headers=admin)
    assert first.status_code == 201, first.text
    assert first.json()["margin"] == "33.3333"
    too_much = await client.post(url, json={"amount": "200.0001"}, headers=admin)
    assert too_much.status_code == 422
    rest = await client.post(url, json={"amount": "200"}, headers=admin)
    assert rest.status_code == 201
    # The last refund gives back exactly the margin left, so the totals never drift.
    assert rest.json()["margin"] == "66.6667"
    after = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert (after["refunded_amount"], after["refunded_margin"], after["refundable_amount"]) == (
        "300.0000",
        "100.0000",
        "0.0000",
    )
    refunded = await events(app, "purchase.refunded", purchase_id=purchase["id"])
    assert sorted(e["margin"] for e in refunded) == ["33.3333", "66.6667"]
    listed = (await client.get(url, headers=admin)).json()
    assert [r["amount"] for r in listed] == ["100.0000", "200.0000"]


async def test_refund_retried_with_the_same_idempotency_key_refunds_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    purchase = (await client.post("/purchases", json=purchase_body(), headers=admin)).json()
    headers = {**admin, "Idempotency-Key": uuid.uuid4().hex}
    url = f"/purchases/{purchase['id']}/refunds"
    first = await client.post(url, json={"amount": "50"}, headers=headers)
    retry = await client.post(url, json={"amount": "50"}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    after = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert after["refunded_amount"] == "50.0000"


async def test_status_moves_forward_and_cancel_publishes_purchase_cancelled(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await client.post("/purchases", json=purchase_body(status="placed"), headers=admin)
    purchase = created.json()
    url = f"/purchases/{purchase['id']}"
    missing = await client.patch(url, json={"status": "paid"}, headers=admin)
    assert missing.status_code == 428
    paid = await client.patch(
        url, json={"status": "paid"}, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    stale = await client.patch(
        url, json={"status": "delivered"}, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert stale.status_code == 412
    back = await client.patch(
        url, json={"status": "placed"}, headers={**admin, "If-Match": paid.headers["etag"]}
    )
    assert back.status_code == 409
    cancelled = await client.patch(
        url, json={"status": "cancelled"}, headers={**admin, "If-Match": paid.headers["etag"]}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert len(await events(app, "purchase.cancelled", purchase_id=purchase["id"])) == 1
    refund = await client.post(f"{url}/refunds", json={"amount": "1"}, headers=admin)
    assert refund.status_code == 409


async def test_list_purchases_filters_by_customer_and_paginates(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    ids = set()
    for _ in range(3):
        response = await client.post("/purchases", json=purchase_body(customer), headers=admin)
        ids.add(response.json()["id"])
    page = await client.get(f"/purchases?customer_id={customer}&limit=2", headers=admin)
    assert len(page.json()["items"]) == 2
    rest = await client.get(
        f"/purchases?customer_id={customer}&limit=2&cursor={page.json()['next_cursor']}",
        headers=admin,
    )
    assert rest.json()["next_cursor"] is None
    assert {p["id"] for p in page.json()["items"] + rest.json()["items"]} == ids


async def test_recorded_purchase_reaches_kafka_keyed_by_customer(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = purchase_body(occurred_at="2026-11-20T17:30:00+08:00")
    created = await client.post("/purchases", json=body, headers=admin)
    purchase = created.json()
    fetched = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert fetched == purchase
    assert purchase["occurred_at"].startswith("2026-11-20T09:30:00")

    async def relayed() -> bool:
        sent = await scalar(
            app,
            "SELECT count(*) FROM outbox WHERE data->>'purchase_id' = :p "
            "AND published_at IS NOT NULL",
            p=purchase["id"],
        )
        return bool(sent)

    await eventually(relayed, timeout=30)
    on_topic = await scalar(
        app, "SELECT count(*) FROM outbox WHERE topic = :t AND published_at IS NOT NULL", t=TOPIC
    )
    records = await read_topic(BOOTSTRAP, TOPIC, at_least=on_topic)
    ours = [r for r in records if json.loads(r.value).get("purchase_id") == purchase["id"]]
    assert len(ours) == 1
    assert ours[0].key == body["customer_id"].encode()
    assert header(ours[0], "ce_type") == "kehu.purchase.recorded.v1"
