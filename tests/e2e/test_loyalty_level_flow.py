"""A purchase that crosses a loyalty level through the real services: interactions records it,
loyalty's own consumer raises the member and publishes `loyalty.level_changed`, and analytics
shows the same level in the customer's insights."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from services.analytics.config import Settings as AnalyticsSettings
from services.analytics.main import create_app as analytics_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from services.loyalty.config import Settings as LoyaltySettings
from services.loyalty.main import create_app as loyalty_app
from tests.conftest import auth
from tests.e2e.test_analytics_flow import _start
from tests.helpers import eventually
from tests.loyalty.conftest import DEFAULT_LEVELS


async def test_the_level_loyalty_raises_on_a_purchase_shows_in_analytics(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    admin = auth(token("admin"))
    fast: dict[str, Any] = {"outbox_poll_interval_s": 0.2, "rate_limit_per_s": 0}
    async with AsyncExitStack() as stack:
        interactions = await _start(stack, interactions_app(InteractionsSettings(**fast)))
        loyalty = await _start(stack, loyalty_app(LoyaltySettings(**fast, jobs_enabled=False)))
        analytics = await _start(
            stack,
            analytics_app(
                AnalyticsSettings(
                    service_database_url=await fresh_database("analytics"),
                    consumer_group=f"analytics-level-{uuid.uuid4().hex[:6]}",
                    catchup_every_s=0,
                    **fast,
                )
            ),
        )
        # The programme's levels as this test needs them (the loyalty database is shared with
        # other suites, which may have replaced them).
        levels = await loyalty.put("/levels", json={"levels": DEFAULT_LEVELS}, headers=admin)
        assert levels.status_code == 200, levels.text
        customer = uuid.uuid4()
        # Far above the highest threshold: the member lands on "gold" at once, through
        # loyalty's purchase consumer.
        purchase = await interactions.post(
            "/purchases",
            json={
                "customer_id": str(customer),
                "external_ref": f"SO-{uuid.uuid4().hex[:10]}",
                "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "amount": "1000000.00",
                "cost": "600000.00",
                "currency": "CNY",
                "status": "paid",
            },
            headers=admin,
        )
        assert purchase.status_code == 201, purchase.text

        async def member() -> dict[str, Any]:
            response = await loyalty.get(f"/members/{customer}", headers=admin)
            return response.json() if response.status_code == 200 else {}

        async def raised() -> bool:
            return (await member()).get("level_changed_at") is not None

        await eventually(raised, timeout=90, interval=0.5)
        level = await member()
        assert level["level"] == "gold"

        async def insights_level() -> dict[str, Any] | None:
            response = await analytics.get(f"/customers/{customer}/insights", headers=admin)
            return response.json().get("loyalty_level") if response.status_code == 200 else None

        async def shown() -> bool:
            return (await insights_level() or {}).get("code") == level["level"]

        await eventually(shown, timeout=90, interval=0.5)
        shown_level = await insights_level()
        assert shown_level is not None
        assert datetime.fromisoformat(shown_level["changed_at"]) == datetime.fromisoformat(
            level["level_changed_at"]
        )
