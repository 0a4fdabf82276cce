"""End to end through the real services: customers, purchases, surveys and complaints go in
through their APIs; analytics' tiers and aggregates follow the definitions; the tier changes
it publishes reach profiles and interactions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from services.analytics.config import Settings as AnalyticsSettings
from services.analytics.main import create_app as analytics_app
from services.analytics.tiering import abc_tiers
from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app as profiles_app
from tests.conftest import auth
from tests.helpers import eventually, serve

TIMEOUT = 90.0


async def _start(stack: AsyncExitStack, app: Any) -> httpx.AsyncClient:
    generator = serve(app)
    client = await generator.__anext__()
    stack.push_async_callback(generator.aclose)
    return client


async def test_customers_purchases_surveys_and_complaints_flow_into_analytics_and_back(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    admin = auth(token("admin"))
    region = f"e2e-{uuid.uuid4().hex[:8]}"  # isolates this test's customers in aggregates
    fast = {"outbox_poll_interval_s": 0.2}
    analytics_settings = AnalyticsSettings(
        service_database_url=await fresh_database("analytics"),
        consumer_group=f"analytics-e2e-{uuid.uuid4().hex[:6]}",
        rerank_debounce_s=0.3,
        rerank_poll_s=0.2,
        **fast,
    )
    async with AsyncExitStack() as stack:
        profiles = await _start(stack, profiles_app(ProfilesSettings(**fast, rate_limit_per_s=0)))
        interactions = await _start(stack, interactions_app(InteractionsSettings(**fast)))
        complaints = await _start(stack, complaints_app(ComplaintsSettings(**fast)))
        analytics = await _start(stack, analytics_app(analytics_settings))

        customers = []
        for n in range(3):
            response = await profiles.post(
                "/customers",
                json={
                    "kind": "organisation",
                    "display_name": f"E2E Trading {n} {region}",
                    "industry": "retail",
                    "region": region,
                    "owner_id": "owner-e2e",
                },
                headers=admin,
            )
            assert response.status_code == 201, response.text
            customers.append(uuid.UUID(response.json()["id"]))
        big, middle, small = customers
        # Margins 800, 150 and 50: before(middle) = 0.80, before(small) = 0.95 of the total.
        for customer, amount, cost in (
            (big, "1000", "200"),
            (middle, "300", "150"),
            (small, "100", "50"),
        ):
            response = await interactions.post(
                "/purchases",
                json={
                    "customer_id": str(customer),
                    "external_ref": f"SO-{uuid.uuid4().hex[:10]}",
                    "amount": amount,
                    "cost": cost,
                    "currency": "CNY",
                    "status": "paid",
                    "occurred_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                },
                headers=admin,
            )
            assert response.status_code == 201, response.text
        for customer, overall, nps in ((big, 5, 10), (middle, 3, 6)):
            response = await interactions.post(
                "/surveys",
                json={
                    "customer_id": str(customer),
                    "channel": "email",
                    "scores": {"overall": overall},
                    "nps": nps,
                },
                headers=admin,
            )
            assert response.status_code == 201, response.text
        filed = await complaints.post(
            "/complaints",
            json={
                "customer_id": str(middle),
                "channel": "email",
                "complainant": {"name": "E2E", "email": "e2e@example.com"},
                "subject": "Late delivery",
                "description": "Two weeks late.",
                "category": "delivery",
                "severity": "medium",
            },
            headers=admin,
        )
        assert filed.status_code == 201, filed.text

        async def insights(customer: uuid.UUID) -> dict[str, Any]:
            response = await analytics.get(f"/customers/{customer}/insights", headers=admin)
            return response.json() if response.status_code == 200 else {}

        async def settled() -> bool:
            views = [await insights(c) for c in customers]
            return (
                all(v.get("tier") and v["dimensions"]["region"] == region for v in views)
                and views[1]["complaints"]["total"] == 1
                and views[1]["satisfaction"]["surveys"] == 1
            )

        await eventually(settled, timeout=TIMEOUT, interval=0.5)
        views = {c: await insights(c) for c in customers}
        assert [Decimal(views[c]["contribution"]) for c in customers] == [
            Decimal(800),
            Decimal(150),
            Decimal(50),
        ]
        assert views[middle]["complaints"]["open"] == 1

        # The tiers are the definition applied to every customer analytics knows.
        members, cursor = [], None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await analytics.get("/tiers", params=params, headers=admin)).json()
            members += page["members"]["items"]
            cursor = page["members"]["next_cursor"]
            if cursor is None:
                break
        expected = abc_tiers(
            {uuid.UUID(m["customer_id"]): Decimal(m["contribution"]) for m in members}
        )
        assert {uuid.UUID(m["customer_id"]): m["tier"] for m in members} == expected
        if len(members) == 3:  # nothing but this test's customers on the topics
            assert [views[c]["tier"] for c in customers] == ["A", "B", "C"]

        satisfaction = (
            await analytics.get("/satisfaction", params={"region": region}, headers=admin)
        ).json()["groups"][0]
        assert satisfaction["csat"]["overall"]["satisfied_pct"] == 50.0
        assert satisfaction["nps"]["score"] == 0.0  # one promoter, one detractor

        # The tier changes analytics published reached profiles and interactions.
        async def propagated() -> bool:
            for customer in customers:
                tier = views[customer]["tier"]
                profile = (await profiles.get(f"/customers/{customer}", headers=admin)).json()
                if profile.get("insights", {}).get("tier") != tier:
                    return False
                plan = await interactions.get(f"/customers/{customer}/cadence", headers=admin)
                if plan.status_code != 200 or plan.json().get("tier") != tier:
                    return False
            return True

        await eventually(propagated, timeout=TIMEOUT, interval=0.5)
