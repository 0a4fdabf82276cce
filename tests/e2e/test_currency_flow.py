"""A USD purchase through the real services: refused without a rate, converted with one, and
analytics adds only the converted (reporting-currency) money."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.analytics.config import Settings as AnalyticsSettings
from services.analytics.main import create_app as analytics_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from tests.conftest import auth
from tests.e2e.test_analytics_flow import _start
from tests.helpers import eventually


async def test_a_foreign_purchase_is_refused_without_a_rate_and_converted_with_one(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    admin = auth(token("admin"))
    code = "Z" + "".join(random.choices(string.ascii_uppercase, k=2))
    fast = {"outbox_poll_interval_s": 0.2}
    async with AsyncExitStack() as stack:
        interactions = await _start(stack, interactions_app(InteractionsSettings(**fast)))
        analytics = await _start(
            stack,
            analytics_app(
                AnalyticsSettings(
                    service_database_url=await fresh_database("analytics"),
                    consumer_group=f"analytics-fx-{uuid.uuid4().hex[:6]}",
                    catchup_every_s=0,
                    **fast,
                )
            ),
        )
        customer = uuid.uuid4()
        at = datetime.now(UTC) - timedelta(days=2)
        body = {
            "customer_id": str(customer),
            "external_ref": f"SO-{uuid.uuid4().hex[:10]}",
            "occurred_at": at.isoformat(),
            "amount": "100.00",
            "cost": "60.00",
            "currency": code,
            "status": "paid",
        }
        refused = await interactions.post("/purchases", json=body, headers=admin)
        assert refused.status_code == 422
        assert (refused.json()["currency"], refused.json()["date"]) == (
            code,
            at.date().isoformat(),
        )
        rate = {"currency": code, "date": at.date().isoformat(), "rate": "6.5"}
        put = await interactions.put("/fx-rates", json={"rates": [rate]}, headers=admin)
        assert put.status_code == 200, put.text
        recorded = await interactions.post("/purchases", json=body, headers=admin)
        assert recorded.status_code == 201, recorded.text
        cny = {**body, "external_ref": f"SO-{uuid.uuid4().hex[:10]}", "currency": "CNY"}
        assert (await interactions.post("/purchases", json=cny, headers=admin)).status_code == 201

        async def insights() -> dict[str, Any]:
            response = await analytics.get(f"/customers/{customer}/insights", headers=admin)
            return response.json() if response.status_code == 200 else {}

        async def both_applied() -> bool:
            return (await insights()).get("purchases", {}).get("count_in_window") == 2

        await eventually(both_applied, timeout=90, interval=0.5)
        view = await insights()
        # 100 USD x 6.5 + 100 CNY; margins 40 x 6.5 + 40: never 100 + 100.
        assert Decimal(view["revenue"]) == Decimal("750")
        assert Decimal(view["contribution"]) == Decimal("300")
