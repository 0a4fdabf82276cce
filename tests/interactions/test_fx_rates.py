"""One reporting currency: purchases and refunds in another currency are converted when
recorded at the rate of their date; without a rate they are refused, naming currency and date."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from fastapi import FastAPI

from tests.conftest import auth
from tests.interactions.factories import purchase_body, scalar

PROBLEM = "application/problem+json"


def currency() -> str:
    """A currency code no other test uses (the rates table is shared by the session)."""
    return "Q" + "".join(random.choices(string.ascii_uppercase, k=2))


async def test_a_purchase_without_a_rate_for_its_date_is_422_naming_currency_and_date(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    code = currency()
    body = purchase_body(currency=code, occurred_at="2026-11-20T09:30:00Z")
    response = await client.post("/purchases", json=body, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["currency"], problem["date"], problem["reporting_currency"]) == (
        code,
        "2026-11-20",
        "CNY",
    )
    assert code in problem["detail"] and "2026-11-20" in problem["detail"]
    assert problem["errors"][0]["field"] == "body.currency"


async def test_rates_convert_purchases_and_refunds_and_both_amounts_are_kept_and_published(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    code = currency()
    day = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    rates = {
        "rates": [
            {"currency": code, "date": "2026-11-20", "rate": "7.1"},
            {"currency": code, "date": "2026-11-21", "rate": "7.2"},
        ]
    }
    forbidden = await client.put("/fx-rates", json=rates, headers=auth(token("manager")))
    assert forbidden.status_code == 403
    stored = await client.put("/fx-rates", json=rates, headers=admin)
    assert stored.status_code == 200, stored.text
    assert [(r["date"], Decimal(r["rate"])) for r in stored.json()] == [
        ("2026-11-20", Decimal("7.1")),
        ("2026-11-21", Decimal("7.2")),
    ]
    listed = await client.get("/fx-rates", params={"currency": code}, headers=admin)
    assert [r["date"] for r in listed.json()] == ["2026-11-21", "2026-11-20"]
    assert listed.json()[0]["reporting_currency"] == "CNY"

    body = purchase_body(currency=code, occurred_at=day.isoformat(), amount="100.00", cost="60.00")
    response = await client.post("/purchases", json=body, headers=admin)
    assert response.status_code == 201, response.text
    purchase = response.json()
    assert (purchase["amount"], purchase["currency"]) == ("100.0000", code)
    assert (purchase["reporting_currency"], Decimal(purchase["fx_rate"])) == ("CNY", Decimal("7.1"))
    assert (purchase["reporting_amount"], purchase["reporting_cost"]) == ("710.0000", "426.0000")
    assert purchase["reporting_margin"] == "284.0000"

    published = await scalar(
        app,
        "SELECT data FROM outbox WHERE type = 'kehu.purchase.recorded.v1' "
        "AND data->>'purchase_id' = :p",
        p=purchase["id"],
    )
    assert (published["amount"], published["currency"]) == ("100.0000", code)
    assert (published["reporting_amount"], published["reporting_margin"]) == (
        "710.0000",
        "284.0000",
    )
    assert published["reporting_currency"] == "CNY"

    # A refund is converted at the rate of its own date; a day without a rate is refused.
    refunds = f"/purchases/{purchase['id']}/refunds"
    late = {"amount": "10.00", "occurred_at": (day + timedelta(days=5)).isoformat()}
    missing = await client.post(refunds, json=late, headers=admin)
    assert missing.status_code == 422
    assert (missing.json()["currency"], missing.json()["date"]) == (code, "2026-11-25")
    refund = await client.post(
        refunds,
        json={"amount": "10.00", "occurred_at": (day + timedelta(days=1)).isoformat()},
        headers={**admin, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert refund.status_code == 201, refund.text
    # margin 10 x 40 / 100 = 4; at 7.2: 72 and 28.8
    assert (refund.json()["reporting_amount"], refund.json()["reporting_margin"]) == (
        "72.0000",
        "28.8000",
    )
    refunded = await scalar(
        app,
        "SELECT data FROM outbox WHERE type = 'kehu.purchase.refunded.v1' "
        "AND data->>'refund_id' = :r",
        r=refund.json()["id"],
    )
    assert (Decimal(refunded["amount"]), refunded["reporting_amount"]) == (10, "72.0000")


async def test_a_purchase_in_the_reporting_currency_needs_no_rate(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/purchases", json=purchase_body(), headers=admin)
    assert response.status_code == 201
    body = response.json()
    assert (body["reporting_currency"], Decimal(body["fx_rate"])) == ("CNY", Decimal(1))
    assert body["reporting_amount"] == body["amount"]
