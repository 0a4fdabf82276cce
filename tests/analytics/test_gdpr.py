"""Analytics' GDPR routes: the profiling data with its definitions, and erasure that keeps the
anonymous aggregates, over the consumer's own batch code and the real database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx

from shared.contracts.customers import CustomerErased, CustomerMerged
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import (
    NOW,
    complaint_flow,
    created,
    days_ago,
    event,
    ids,
    purchase,
    survey,
)
from tests.conftest import auth


async def test_export_shows_the_profiling_data_with_its_definitions(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, other = ids(2)
    await analytics_db.apply(
        [
            created(x, industry="retail", region="east", owner_id="u-1"),
            created(other, industry="energy"),
            purchase(x, "40", amount="100", at=days_ago(20)),
            purchase(other, "5", amount="20", at=days_ago(3)),
            survey(x, {"overall": 5}, nps=9),
        ]
    )
    await analytics_db.rerank()
    admin = auth(token("admin"))
    response = await client.get(f"/customers/{x}/export", headers=admin)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["service"] == "analytics" and document["status"] == "ok"
    data = document["data"]
    assert data["facts"]["tier"] == "A" and data["facts"]["industry"] == "retail"
    assert data["facts"]["contribution"] == "40.0000"
    assert data["facts"]["lifecycle_stage"] == "first_purchase"
    assert data["facts"]["churn_score"] is not None
    assert len(data["purchases"]) == 1 and len(data["surveys"]) == 1
    assert {a["dimension"] for a in data["survey_answers"]} == {"overall"}
    assert {h["type"] for h in data["history"]} >= {"kehu.customer.tier_changed.v1"}
    assert all(h["data"]["customer_id"] == str(x) for h in data["history"])
    for figure in ("tier", "rfm", "lifecycle_stage", "churn_risk", "contribution"):
        assert document["definitions"][figure]

    unknown = await client.get(f"/customers/{uuid.uuid4()}/export", headers=admin)
    assert unknown.status_code == 200
    assert unknown.json()["status"] == "holds_nothing"
    report = await client.get(f"/customers/{uuid.uuid4()}/erasure", headers=admin)
    assert report.json()["status"] == "holds_nothing"
    analyst = await client.get(f"/customers/{x}/export", headers=auth(token("analyst")))
    assert analyst.status_code == 403  # the export needs pii:read
    audit = await client.get("/audit", params={"customer_id": str(x)}, headers=admin)
    assert [e["action"] for e in audit.json()["items"]] == ["export"]


async def test_erasure_anonymises_the_rows_and_keeps_the_aggregates(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, merged, other = ids(3)
    await analytics_db.apply(
        [
            created(x, industry="retail", region="east", owner_id="u-1"),
            created(merged, industry="retail", region="east"),
            created(other, industry="energy", region="west"),
            purchase(x, "40", amount="100", at=days_ago(20)),
            purchase(other, "5", amount="20", at=days_ago(3)),
            survey(x, {"overall": 5}, nps=9),
            *complaint_flow(x, days_ago(2), 60, None),
            event(
                CustomerMerged(customer_id=x, occurred_at=days_ago(1), merged_customer_id=merged)
            ),
        ]
    )
    await analytics_db.rerank()
    admin = auth(token("admin"))
    before = (await client.get("/tiers", headers=admin)).json()
    pending = (await client.get(f"/customers/{x}/erasure", headers=admin)).json()
    assert pending["status"] == "pending"

    await analytics_db.apply([event(CustomerErased(customer_id=x, occurred_at=NOW))])
    # A late event about the erased customer is not ingested again.
    await analytics_db.apply([purchase(x, "7", at=days_ago(1))])
    await analytics_db.rerank(NOW + timedelta(seconds=1))

    for customer in (x, merged):
        report = (await client.get(f"/customers/{customer}/erasure", headers=admin)).json()
        assert report["status"] == "erased" and report["erased"] is True, customer
        assert report["kept"] and report["erased_at"] is not None
    rows = await analytics_db.rows(
        "SELECT customer_id::text AS id FROM customer_facts WHERE customer_id IN (:x, :m)",
        x=x,
        m=merged,
    )
    assert rows == []
    for table in ("purchases", "surveys", "complaints", "customer_aliases"):
        column = "survivor_id" if table == "customer_aliases" else "customer_id"
        left = await analytics_db.rows(f"SELECT 1 FROM {table} WHERE {column} = :x", x=x)
        assert left == [], table
    [anonymous] = await analytics_db.rows("SELECT * FROM customer_facts WHERE erased")
    assert anonymous.customer_id not in (x, merged, other)
    assert (anonymous.industry, anonymous.region, anonymous.owner_id) == (None, None, None)
    assert (anonymous.customer_number, anonymous.kind) == (None, None)
    assert str(anonymous.contribution) == "40.0000" and anonymous.tier == "A"
    # The aggregates still count the customer's figures, under unknown dimensions.
    after = (await client.get("/tiers", headers=admin)).json()
    assert after["customers"] == before["customers"]
    assert [t["customers"] for t in after["tiers"]] == [t["customers"] for t in before["tiers"]]
    assert after["total_positive_contribution"] == before["total_positive_contribution"]
    by_region = await client.get(
        "/satisfaction",
        params={
            "group_by": "region",
            "from": days_ago(30).isoformat(),
            "to": (NOW + timedelta(seconds=1)).isoformat(),
        },
        headers=admin,
    )
    groups = {g["key"]: g for g in by_region.json()["groups"]}
    assert "east" not in groups and groups[None]["csat"]["overall"]["count"] == 1
    # Nothing about the erased customer, nor the anonymous id, is in the event log.
    published = await analytics_db.rows(
        "SELECT 1 FROM outbox WHERE subject IN (:x, :a)",
        x=str(x),
        a=str(anonymous.customer_id),
    )
    assert published == []
    export = (await client.get(f"/customers/{x}/export", headers=admin)).json()
    assert export["status"] == "ok" and export["erased_at"] is not None
    assert export["data"]["facts"] is None and export["data"]["purchases"] == []
