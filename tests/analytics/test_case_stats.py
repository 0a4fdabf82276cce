"""Service-desk case statistics by type from `case.*` events: volumes, SLA compliance, p50/p90,
the satisfaction rating after any case type; a customer's cases follow a merge and an erasure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.contracts import cases as cc
from shared.contracts.customers import CustomerErased
from shared.events.envelope import CloudEvent
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import NOW, days_ago, event, ids
from tests.conftest import auth


def case_flow(
    customer_id: uuid.UUID,
    case_type: str,
    at: datetime,
    first_response_s: int,
    resolution_s: int | None,
    *,
    subtype: str | None = None,
    met: bool = True,
    rating: int | None = None,
) -> list[CloudEvent]:
    case_id = uuid.uuid4()
    base: dict[str, Any] = {
        "customer_id": customer_id,
        "case_id": case_id,
        "type": case_type,
        "subtype": subtype,
        "reference": f"XX-2026-{case_id.int % 1_000_000:06d}",
    }
    flow: list[Any] = [
        cc.CaseReceived(
            **base,
            occurred_at=at,
            channel="phone",
            category="other",
            severity="medium",
            sla_policy="default/medium/C",
            first_response_due_at=at + timedelta(hours=1),
            resolution_due_at=at + timedelta(days=2),
        ),
        cc.CaseAcknowledged(
            **base,
            occurred_at=at + timedelta(seconds=first_response_s),
            first_response_seconds=first_response_s,
            first_response_met=met,
            resolution_due_at=at + timedelta(days=2),
        ),
    ]
    if not met:
        flow.append(
            cc.CaseSlaBreached(
                **base, occurred_at=at + timedelta(hours=1), target="first_response", due_at=at
            )
        )
    if resolution_s is not None:
        done = at + timedelta(seconds=resolution_s)
        flow.append(
            cc.CaseResolved(
                **base,
                occurred_at=done,
                status="accepted" if case_type == "suggestion" else "resolved",
                outcome="repaired",
                outcome_summary="Done.",
                resolution_seconds=resolution_s,
                resolution_met=met,
            )
        )
        if rating is not None:
            flow.append(cc.CaseRated(**base, occurred_at=done + timedelta(hours=1), rating=rating))
    return [event(e) for e in flow]


def period() -> dict[str, str]:
    return {"from": days_ago(30).isoformat(), "to": (NOW + timedelta(seconds=1)).isoformat()}


async def test_case_stats_by_type_with_sla_percentiles_and_ratings(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    x, y = ids(2)
    at = days_ago(3)
    await analytics_db.apply(
        [
            *case_flow(x, "service_request", at, 100, 1000, subtype="repair", rating=5),
            *case_flow(x, "service_request", at, 200, 2000, subtype="repair", rating=4),
            *case_flow(
                y, "service_request", at, 300, 3000, subtype="installation", met=False, rating=2
            ),
            *case_flow(y, "inquiry", at, 50, None),
            *case_flow(y, "suggestion", at, 60, 600, rating=5),
        ],
        # Events out of order in a later batch change nothing twice.
        case_flow(x, "inquiry", days_ago(60), 10, 20),
    )
    headers = auth(token("analyst"))
    body = (await client.get("/cases/stats", params=period(), headers=headers)).json()
    assert body["group_by"] == "type"
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"inquiry", "service_request", "suggestion"}
    service = groups["service_request"]
    assert (service["received"], service["open"], service["resolved"]) == (3, 0, 3)
    assert service["first_response"] == {
        "count": 3,
        "p50_seconds": 200.0,
        "p90_seconds": 280.0,
        "sla_met_pct": 66.67,
        "breached": 1,
    }
    assert service["resolution"]["p50_seconds"] == 2000.0
    assert service["resolution"]["p90_seconds"] == 2800.0
    assert service["sla_compliance_pct"] == 66.67
    assert (service["rated"], service["rating_avg"], service["satisfied_pct"]) == (3, 3.67, 66.67)
    inquiry = groups["inquiry"]  # the one from 60 days ago is outside the period
    assert (inquiry["received"], inquiry["open"], inquiry["rated"]) == (1, 1, 0)
    assert groups["suggestion"]["rating_avg"] == 5.0

    by_subtype = (
        await client.get(
            "/cases/stats", params={**period(), "group_by": "subtype"}, headers=headers
        )
    ).json()
    keys = [g["key"] for g in by_subtype["groups"]]
    assert keys == [
        "inquiry",
        "service_request/installation",
        "service_request/repair",
        "suggestion",
    ]

    # An erased customer's cases stay in the figures under an anonymous id.
    await analytics_db.apply([event(CustomerErased(customer_id=y, occurred_at=NOW))])
    left = await analytics_db.rows(
        "SELECT count(*) AS n FROM case_facts WHERE customer_id = :y", y=y
    )
    assert left[0].n == 0
    again = (await client.get("/cases/stats", params=period(), headers=headers)).json()
    assert {g["key"]: g["received"] for g in again["groups"]} == {
        "inquiry": 1,
        "service_request": 3,
        "suggestion": 1,
    }
