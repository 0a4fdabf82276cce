"""GDPR across every real service, over real HTTP: a customer with purchases, a survey, a
complaint and webhook deliveries is exported whole (a section with data from every service),
then erased everywhere, each service saying what it kept, and analytics keeps no dimension of
the customer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from services.analytics.config import Settings as AnalyticsSettings
from services.analytics.main import create_app as analytics_app
from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from services.loyalty.config import Settings as LoyaltySettings
from services.loyalty.main import create_app as loyalty_app
from services.outreach.config import Settings as OutreachSettings
from services.outreach.main import create_app as outreach_app
from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app as profiles_app
from services.subscriptions.config import Settings as SubscriptionsSettings
from services.subscriptions.main import create_app as subscriptions_app
from tests.conftest import auth
from tests.helpers import eventually
from tests.profiles.test_data_protection import closed_port, running

TIMEOUT = 120.0
PEERS = ("interactions", "complaints", "analytics", "subscriptions", "loyalty", "outreach")


async def test_export_covers_every_service_and_erasure_completes_in_each(
    fresh_database: Any, token: Callable[..., str]
) -> None:
    admin = auth(token("admin"))
    manager = auth(token("manager", subject="gdpr-manager"))
    fast: dict[str, Any] = {"outbox_poll_interval_s": 0.2, "rate_limit_per_s": 0}
    u = uuid.uuid4().hex[:8]
    owner = f"owner-{u}"
    industry = f"industry-{u}"
    apps = {
        "interactions": interactions_app(InteractionsSettings(**fast)),
        "complaints": complaints_app(ComplaintsSettings(**fast)),
        "analytics": analytics_app(
            AnalyticsSettings(
                service_database_url=await fresh_database("analytics"),
                consumer_group=f"analytics-gdpr-{u}",
                rerank_debounce_s=0.3,
                rerank_poll_s=0.2,
                **fast,
            )
        ),
        "subscriptions": subscriptions_app(
            SubscriptionsSettings(**fast, webhook_allowed_networks=["127.0.0.0/8"])
        ),
        "loyalty": loyalty_app(LoyaltySettings(**fast, jobs_enabled=False)),
        "outreach": outreach_app(
            OutreachSettings(**fast, consumer_group=f"outreach-gdpr-{u}", dispatcher_enabled=False)
        ),
    }
    profiles_settings = ProfilesSettings(**fast)
    async with AsyncExitStack() as stack:
        urls = {
            name: await stack.enter_async_context(running(app, lifespan="on"))
            for name, app in apps.items()
        }
        profiles_settings.interactions_url = urls["interactions"]
        profiles_settings.complaints_url = urls["complaints"]
        profiles_settings.analytics_url = urls["analytics"]
        profiles_settings.subscriptions_url = urls["subscriptions"]
        profiles_settings.loyalty_url = urls["loyalty"]
        profiles_settings.outreach_url = urls["outreach"]
        profiles_url = await stack.enter_async_context(
            running(profiles_app(profiles_settings), lifespan="on")
        )
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))

        # A webhook subscriber of customer events: its delivery log mentions the customer.
        subscription = await client.post(
            urls["subscriptions"] + "/subscriptions",
            json={
                "url": closed_port() + "/hook",
                "event_types": ["kehu.customer.created.v1", "kehu.purchase.recorded.v1"],
            },
            headers=admin,
        )
        assert subscription.status_code == 201, subscription.text

        customer = await client.post(
            profiles_url + "/customers",
            json={
                "kind": "person",
                "display_name": f"Erase Me {u}",
                "email": f"erase.me.{u}@example.com",
                "industry": industry,
                "region": "east",
                "owner_id": owner,
                "language": "zh-CN",
            },
            headers=admin,
        )
        assert customer.status_code == 201, customer.text
        cid = customer.json()["id"]
        now = datetime.now(UTC)
        for n in range(2):
            purchase = await client.post(
                urls["interactions"] + "/purchases",
                json={
                    "customer_id": cid,
                    "external_ref": f"SO-{u}-{n}",
                    "occurred_at": (now - timedelta(days=n + 1)).isoformat(),
                    "amount": "120.00",
                    "cost": "70.00",
                    "currency": "CNY",
                    "status": "paid",
                },
                headers=admin,
            )
            assert purchase.status_code == 201, purchase.text
        survey = await client.post(
            urls["interactions"] + "/surveys",
            json={"customer_id": cid, "scores": {"overall": 4}, "nps": 8, "comment": "ok"},
            headers=admin,
        )
        assert survey.status_code == 201, survey.text
        complaint = await client.post(
            urls["complaints"] + "/complaints",
            json={
                "customer_id": cid,
                "channel": "email",
                "subject": f"Late parcel {u}",
                "description": "It came a week late.",
                "category": "delivery",
                "severity": "low",
            },
            headers=admin,
        )
        assert complaint.status_code == 201, complaint.text

        export: dict[str, Any] = {}

        async def every_service_holds_the_customer() -> bool:
            response = await client.get(
                f"{profiles_url}/customers/{cid}/gdpr-export", headers=admin
            )
            assert response.status_code == 200, response.text
            export.update(response.json())
            return all(s["status"] == "ok" for s in export["services"])

        await eventually(every_service_holds_the_customer, timeout=TIMEOUT, interval=0.5)
        sections = {s["service"]: s for s in export["services"]}
        assert set(sections) == {"profiles", *PEERS}
        assert export["complete"] is True
        assert sections["interactions"]["data"]["data"]["purchases"]
        assert sections["interactions"]["data"]["data"]["surveys"]
        assert sections["complaints"]["data"]["data"]["complaints"]
        analytics_doc = sections["analytics"]["data"]
        assert analytics_doc["data"]["facts"]["industry"] == industry
        assert analytics_doc["definitions"]["tier"]
        assert sections["subscriptions"]["data"]["data"]
        assert len(sections["loyalty"]["data"]["data"]["ledger"]) == 2  # the purchases' points
        assert sections["outreach"]["data"]["data"]["preferences"]["language"] == "zh-CN"

        # An agent may not erase; a manager may.
        agent = auth(token("agent", subject=owner))
        refused = await client.post(f"{profiles_url}/customers/{cid}/erasure", headers=agent)
        assert refused.status_code == 403
        assert "customers:erase" in refused.json()["detail"]
        erased = await client.post(f"{profiles_url}/customers/{cid}/erasure", headers=manager)
        assert erased.status_code == 200, erased.text

        report: dict[str, Any] = {}

        async def erased_everywhere() -> bool:
            response = await client.get(f"{profiles_url}/customers/{cid}/erasure", headers=admin)
            assert response.status_code == 200, response.text
            report.update(response.json())
            return bool(report["complete"])

        await eventually(erased_everywhere, timeout=TIMEOUT, interval=0.5)
        statuses = {s["service"]: s for s in report["services"]}
        assert set(statuses) == {"profiles", *PEERS}
        for name in PEERS:
            assert statuses[name]["status"] == "erased", statuses[name]
            assert statuses[name]["kept"], f"{name} does not say what it kept"

        # Analytics keeps anonymous facts only: no row carries the customer or its dimensions.
        engine = apps["analytics"].state.engine
        async with engine.connect() as conn:
            by_id = await conn.scalar(
                sa.text("SELECT count(*) FROM customer_facts WHERE customer_id = :id"), {"id": cid}
            )
            by_dimension = await conn.scalar(
                sa.text("SELECT count(*) FROM customer_facts WHERE industry = :i OR owner_id = :o"),
                {"i": industry, "o": owner},
            )
            anonymous = await conn.scalar(sa.text("SELECT count(*) FROM customer_facts"))
        assert by_id == 0 and by_dimension == 0
        assert anonymous >= 1  # the figures stay, without the customer
