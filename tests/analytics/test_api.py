"""The analytics API over hand-computed data: insights, tiers, satisfaction, complaints, churn."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from shared.contracts.customers import CustomerMerged
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import (
    NOW,
    complaint_flow,
    created,
    days_ago,
    event,
    ids,
    interaction,
    purchase,
    survey,
)
from tests.conftest import auth


def period() -> dict[str, str]:
    return {"from": days_ago(30).isoformat(), "to": (NOW + timedelta(seconds=1)).isoformat()}


async def test_insights_of_a_customer(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, merged = ids(2)
    await analytics_db.apply(
        [
            created(x, industry="retail", region="east", owner_id="u-1"),
            purchase(x, "40", amount="100", at=days_ago(20)),
            purchase(x, "10", amount="50", at=days_ago(5)),
            interaction(x, "phone"),
            interaction(x, "phone"),
            interaction(x, "email"),
            survey(x, {"overall": 5, "service": 3}, nps=9),
            *complaint_flow(x, days_ago(2), 60, None),
            event(
                CustomerMerged(customer_id=x, occurred_at=days_ago(1), merged_customer_id=merged)
            ),
        ]
    )
    await analytics_db.rerank()
    headers = auth(token("analyst"))
    body = (await client.get(f"/customers/{x}/insights", headers=headers)).json()
    assert body["tier"] == "A" and body["tier_rank"] == 1
    assert (body["revenue"], body["contribution"]) == ("150.0000", "50.0000")
    assert body["purchases"]["count_in_window"] == 2
    assert body["dimensions"]["industry"] == "retail" and body["profile_known"] is True
    assert body["interactions"]["by_channel"] == {"email": 1, "phone": 2}
    assert body["satisfaction"]["csat"]["service"] == {
        "count": 1,
        "mean": 3.0,
        "satisfied_pct": 0.0,
    }
    assert body["satisfaction"]["last_nps"] == 9
    assert body["complaints"] == {"total": 1, "open": 1, "sla_breaches_recent": 0}
    assert body["lifecycle_stage"] == "repeat"
    assert body["churn_risk"]["score"] == 30  # 20 recent complaint + 10 open complaint
    # The only buyer is at position 1 of 1 on every measure: floor(5 x 0 / 1) + 1 = 1.
    assert body["rfm"]["score"] == "111" and body["rfm"]["segment"] == "lost"
    via_merged = await client.get(f"/customers/{merged}/insights", headers=headers)
    assert via_merged.json()["customer_id"] == str(x)

    missing = await client.get(f"/customers/{uuid.uuid4()}/insights", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/customers/{x}/insights")).status_code == 401
    bad = await client.get("/customers/not-a-uuid/insights", headers=headers)
    assert bad.status_code == 422


async def test_tiers_distribution_shares_and_member_paging(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    a, b, c, d = ids(4)
    await analytics_db.apply([purchase(a, "80"), purchase(b, "15"), purchase(c, "5"), created(d)])
    await analytics_db.rerank()
    headers = auth(token("analyst"))
    body = (await client.get("/tiers", params={"limit": 3}, headers=headers)).json()
    assert body["thresholds"] == {"a_share": 0.8, "b_share": 0.95}
    assert body["total_positive_contribution"] == "100.0000"
    assert [(t["tier"], t["customers"], t["share_of_contribution_pct"]) for t in body["tiers"]] == [
        ("A", 1, 80.0),
        ("B", 1, 15.0),
        ("C", 2, 5.0),
    ]
    page1 = body["members"]
    assert [(m["rank"], m["customer_id"]) for m in page1["items"]] == [
        (1, str(a)),
        (2, str(b)),
        (3, str(c)),
    ]
    page2 = (
        await client.get(
            "/tiers", params={"limit": 3, "cursor": page1["next_cursor"]}, headers=headers
        )
    ).json()["members"]
    assert [(m["rank"], m["customer_id"]) for m in page2["items"]] == [(4, str(d))]
    assert page2["next_cursor"] is None
    only_c = (await client.get("/tiers", params={"tier": "C"}, headers=headers)).json()
    assert [(m["rank"], m["tier"]) for m in only_c["members"]["items"]] == [(3, "C"), (4, "C")]
    bad = await client.get("/tiers", params={"cursor": "garbage"}, headers=headers)
    assert bad.status_code == 400
    assert (await client.get("/tiers", params={"tier": "D"}, headers=headers)).status_code == 422


async def test_satisfaction_csat_nps_effort_ratings_targets_and_empty_groups(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, y = ids(2)
    await analytics_db.apply(
        [
            created(x, industry="manufacturing", region="east"),
            created(y, industry="retail", region="east"),
            survey(x, {"overall": 5, "service": 4}, nps=10, effort=2),
            survey(x, {"overall": 3, "service": 2}, nps=6, effort=4),
            survey(y, {"overall": 4}, nps=8, effort=3),
            survey(y, {"overall": 1}, nps=0, at=days_ago(400)),  # outside the period
            *complaint_flow(x, days_ago(3), 60, 600, rating=5),
            *complaint_flow(y, days_ago(3), 60, 600, rating=2),
        ]
    )
    headers = auth(token("analyst"))
    body = (await client.get("/satisfaction", params=period(), headers=headers)).json()
    assert body["group_by"] == "none" and "from" in body
    [overall] = body["groups"]
    assert overall["csat"]["overall"] == {
        "count": 3,
        "mean": 4.0,
        "satisfied_pct": 66.67,
        "target_pct": 95.0,
        "gap_pct": -28.33,
    }
    assert overall["csat"]["service"]["satisfied_pct"] == 50.0
    assert overall["nps"] == {
        "count": 3,
        "promoters_pct": 33.33,
        "passives_pct": 33.33,
        "detractors_pct": 33.33,
        "score": 0.0,
        "target": 50.0,
        "gap": -50.0,
    }
    assert overall["effort"] == {"count": 3, "mean": 3.0, "target": 2.5, "gap": -0.5}
    assert overall["complaint_resolution"] == {
        "count": 2,
        "mean": 3.5,
        "satisfied_pct": 50.0,
        "target_pct": 95.0,
        "gap_pct": -45.0,
    }

    by_industry = (
        await client.get(
            "/satisfaction", params={**period(), "group_by": "industry"}, headers=headers
        )
    ).json()["groups"]
    assert [(g["key"], g["csat"]["overall"]["satisfied_pct"]) for g in by_industry] == [
        ("manufacturing", 50.0),
        ("retail", 100.0),
    ]
    assert by_industry[1]["nps"]["passives_pct"] == 100.0

    empty = (
        await client.get("/satisfaction", params={**period(), "region": "north"}, headers=headers)
    ).json()["groups"]
    assert empty[0]["csat"] == {} and empty[0]["nps"]["count"] == 0
    assert empty[0]["nps"]["score"] is None and empty[0]["effort"]["mean"] is None
    monthly_empty = await client.get(
        "/satisfaction",
        params={**period(), "region": "north", "group_by": "month"},
        headers=headers,
    )
    assert monthly_empty.json()["groups"] == []

    inverted = await client.get(
        "/satisfaction",
        params={"from": NOW.isoformat(), "to": days_ago(1).isoformat()},
        headers=headers,
    )
    assert inverted.status_code == 422
    assert (
        await client.get("/satisfaction", params={"group_by": "galaxy"}, headers=headers)
    ).status_code == 422


async def test_complaint_stats_percentiles_sla_and_reopen_rate(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x = ids(1)[0]
    at = days_ago(5)
    await analytics_db.apply(
        [
            *complaint_flow(x, at, 100, 1000, rating=5),
            *complaint_flow(x, at, 200, 2000, rating=4, reopened=True),
            *complaint_flow(
                x,
                at,
                300,
                3000,
                category="billing",
                root_cause="pricing_error",
                fr_met=False,
                res_met=False,
                rating=2,
            ),
            *complaint_flow(x, at, 400, None, category="billing"),
        ]
    )
    headers = auth(token("analyst"))
    body = (await client.get("/complaints/stats", params=period(), headers=headers)).json()
    [g] = body["groups"]
    assert (g["received"], g["open"], g["resolved"], g["reopened"]) == (4, 2, 3, 1)
    assert g["reopen_rate_pct"] == 33.33
    assert g["first_response"] == {
        "count": 4,
        "p50_seconds": 250.0,
        "p90_seconds": 370.0,
        "sla_met_pct": 75.0,
        "breached": 1,
    }
    assert g["resolution"] == {
        "count": 3,
        "p50_seconds": 2000.0,
        "p90_seconds": 2800.0,
        "sla_met_pct": 66.67,
        "breached": 0,
    }
    assert g["sla_compliance_pct"] == 71.43  # (3 + 2) met of (4 + 3) decided
    assert g["by_category"] == {"delivery": 2, "billing": 2}
    assert g["by_root_cause"] == {"packaging": 2, "pricing_error": 1}
    assert g["by_severity"] == {"medium": 4}

    by_category = (
        await client.get(
            "/complaints/stats", params={**period(), "group_by": "category"}, headers=headers
        )
    ).json()["groups"]
    assert [(c["key"], c["received"]) for c in by_category] == [("billing", 2), ("delivery", 2)]
    nothing = await client.get(
        "/complaints/stats",
        params={"from": days_ago(900).isoformat(), "to": days_ago(800).isoformat()},
        headers=headers,
    )
    assert nothing.json()["groups"] == []


async def test_churn_ranking_rfm_segments_and_admin_scopes(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    risky, calm, idle = ids(3)
    await analytics_db.apply(
        [
            *[purchase(risky, "10", at=days_ago(d)) for d in (130, 120, 110)],
            purchase(calm, "10", at=days_ago(3)),
            interaction(calm, "chat"),
            purchase(idle, "10", at=days_ago(100)),
        ]
    )
    await analytics_db.rerank()
    headers = auth(token("analyst"))
    ranking = (await client.get("/churn-risk", params={"limit": 1}, headers=headers)).json()
    assert ranking["items"][0]["customer_id"] == str(risky)
    assert ranking["items"][0]["score"] == 55 and ranking["items"][0]["level"] == "medium"
    assert ranking["items"][0]["reasons"][0].startswith("no purchase in 110 days")
    rest = (
        await client.get("/churn-risk", params={"cursor": ranking["next_cursor"]}, headers=headers)
    ).json()
    assert [i["customer_id"] for i in rest["items"]] == [str(idle)]  # calm scores 0
    assert rest["next_cursor"] is None

    segments = (await client.get("/rfm/segments", headers=headers)).json()
    assert segments["customers_scored"] == 3 and segments["customers_without_purchase"] == 0
    assert len(segments["segments"]) == 8
    assert sum(s["customers"] for s in segments["segments"]) == 3
    empty = [s for s in segments["segments"] if s["customers"] == 0]
    assert all(s["avg_monetary"] is None and s["share_pct"] == 0.0 for s in empty)

    forbidden = await client.post("/admin/recompute", headers=auth(token("manager")))
    assert forbidden.status_code == 403
    done = await client.post("/admin/recompute", headers=auth(token("admin")))
    assert done.status_code == 200 and done.json()["tier_events"] == 0


async def test_openapi_documents_every_endpoint(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    for path in (
        "/customers/{customer_id}/insights",
        "/tiers",
        "/satisfaction",
        "/complaints/stats",
        "/churn-risk",
        "/rfm/segments",
        "/admin/rebuild",
    ):
        operation = next(iter(spec["paths"][path].values()))
        assert operation["summary"] and "Scope" in operation["description"]
    assert "before_i / total < 0.80" in spec["info"]["description"]
