"""Staff and service-quality figures against a hand-computed scenario.

Period: the last 30 days. Agents ana and bo are in team care, cy in team sales (from their
complaint assignments). Customers c1 (owner own-1, tier A), c2 (own-1, B), c3 (own-2, C).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.analytics.reports import report_period
from shared.contracts import complaints as cc
from shared.contracts import interactions as ic
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import (
    NOW,
    complaint_flow,
    complaint_received,
    created,
    days_ago,
    event,
    ids,
    purchase,
    survey,
)
from tests.conftest import auth

PERIOD = {"from": days_ago(30).isoformat(), "to": NOW.isoformat()}


def followup(
    customer: uuid.UUID,
    assignee: str,
    due: float,
    *,
    completed: float | None = None,
    cancelled: float | None = None,
) -> list[Any]:
    """A follow-up due `due` days ago (negative: ahead), done or cancelled days ago."""
    fields = {
        "customer_id": customer,
        "followup_id": uuid.uuid4(),
        "kind": "revisit",
        "due_at": days_ago(due),
        "assignee_id": assignee,
    }
    events = [event(ic.FollowupScheduled(**fields, occurred_at=days_ago(60)))]
    if completed is not None:
        events.append(event(ic.FollowupCompleted(**fields, occurred_at=days_ago(completed))))
    if cancelled is not None:
        events.append(event(ic.FollowupCancelled(**fields, occurred_at=days_ago(cancelled))))
    return events


def contact(customer: uuid.UUID, agent: str | None, ago: float) -> Any:
    return event(
        ic.InteractionLogged(
            customer_id=customer,
            occurred_at=days_ago(ago),
            interaction_id=uuid.uuid4(),
            channel="phone",
            direction="outbound",
            agent_id=agent,
        )
    )


def complaint(customer: uuid.UUID, assignee: str, team: str, ago: float, **flow: Any) -> list[Any]:
    events = complaint_flow(customer, days_ago(ago), **flow)
    complaint_id = events[0].data["complaint_id"]
    assigned = cc.ComplaintAssigned(
        customer_id=customer,
        occurred_at=days_ago(ago),
        complaint_id=complaint_id,
        assignee_id=assignee,
        team=team,
    )
    return [*events, event(assigned)]


@pytest.fixture
async def scenario(analytics_db: AnalyticsDb) -> list[uuid.UUID]:
    c1, c2, c3 = ids(3)
    events = [
        created(c1, owner_id="own-1"),
        created(c2, owner_id="own-1"),
        created(c3, owner_id="own-2"),
        purchase(c1, "800", at=days_ago(50)),  # contributions 800, 150, 50: A, B, C
        purchase(c2, "150", at=days_ago(50)),
        purchase(c3, "50", at=days_ago(50)),
        # Follow-ups.
        *followup(c1, "ana", due=10, completed=11),  # on time
        *followup(c2, "ana", due=10, completed=8),  # late
        *followup(c3, "ana", due=5),  # overdue now
        *followup(c2, "bo", due=3, cancelled=4),  # cancelled: not overdue
        *followup(c1, "bo", due=-5),  # not due yet
        *followup(c3, "cy", due=40, completed=35),  # before the period
        # Interactions.
        contact(c1, "ana", 20),
        contact(c2, "ana", 20),
        contact(c2, "bo", 1),
        contact(c3, "cy", 100),  # before the period
        contact(c3, None, 3),
        # Complaints: first response / resolution in SLA seconds.
        *complaint(c1, "ana", "care", 10, first_response_s=600, resolution_s=7200, rating=5),
        *complaint(c2, "ana", "care", 4, first_response_s=300, resolution_s=3600, res_met=False),
        *complaint(c2, "bo", "care", 6, first_response_s=1200, resolution_s=None),
        *complaint(
            c3, "cy", "sales", 5, first_response_s=3600, fr_met=False, resolution_s=86400, rating=2
        ),
        # Surveys: c1 answers 5 and 3, c2 4, c3 1.
        survey(c1, {"overall": 5, "service": 3}, at=days_ago(3)),
        survey(c2, {"overall": 4}, at=days_ago(2)),
        survey(c3, {"overall": 1}, at=days_ago(1)),
    ]
    await analytics_db.apply(events)
    await analytics_db.rerank()
    return [c1, c2, c3]


async def _groups(
    client: httpx.AsyncClient, token: Callable[..., str], group_by: str
) -> dict[str | None, dict[str, Any]]:
    response = await client.get(
        "/staff/performance",
        params={**PERIOD, "group_by": group_by},
        headers=auth(token("analyst")),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["definitions"]) >= {"followups_completed", "revisit_compliance_pct"}
    return {g["key"]: g for g in body["groups"]}


async def test_staff_figures_by_assignee_equal_the_hand_computed_values(
    scenario: list[uuid.UUID], client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    g = await _groups(client, token, "assignee")
    ana, bo, cy = g["ana"], g["bo"], g["cy"]
    # Follow-ups: ana completed 2 in the period, 1 on time; f3 is overdue now.
    assert (ana["followups_completed"], ana["followups_completed_on_time_pct"]) == (2, 50.0)
    assert ana["followups_overdue_now"] == 1
    assert (bo["followups_completed"], bo["followups_overdue_now"]) == (0, 0)  # cancelled, ahead
    assert (cy["followups_completed"], cy["followups_overdue_now"]) == (0, 0)  # before period
    # Revisits: ana's customers c1 (A, last contact 20 d > 14), c2 (B, 1 d), c3 (C, 3 d).
    assert (ana["revisit_customers"], ana["revisit_compliance_pct"]) == (3, 66.67)
    assert (bo["revisit_customers"], bo["revisit_compliance_pct"]) == (1, 100.0)
    assert cy["revisit_compliance_pct"] is None
    # Interactions: ana 2, bo 1; cy's is before the period; one has no agent.
    assert (ana["interactions_logged"], bo["interactions_logged"]) == (2, 1)
    assert cy["interactions_logged"] == 0 and g[None]["interactions_logged"] == 1
    # Complaints: ana handled 2 (first response 600 and 300 s, resolution 7200 and 3600 s).
    assert ana["complaints_handled"] == 2
    assert ana["first_response"] == {"count": 2, "p50_seconds": 450.0, "p90_seconds": 570.0}
    assert ana["resolution"] == {"count": 2, "p50_seconds": 5400.0, "p90_seconds": 6840.0}
    assert ana["sla_compliance_pct"] == 75.0  # 3 of 4 targets met (one resolution missed)
    assert ana["resolution_rating"] == {"count": 1, "mean": 5.0, "satisfied_pct": 100.0}
    assert (bo["complaints_handled"], bo["sla_compliance_pct"]) == (0, 100.0)
    assert bo["resolution"] == {"count": 0, "p50_seconds": None, "p90_seconds": None}
    assert cy["sla_compliance_pct"] == 50.0  # first response breached, resolution met
    assert cy["resolution_rating"] == {"count": 1, "mean": 2.0, "satisfied_pct": 0.0}
    # CSAT of the customers each agent contacted in the period: ana c1 and c2 (5, 3, 4).
    assert ana["customer_csat"] == {"count": 3, "satisfied_pct": 66.67}
    assert bo["customer_csat"] == {"count": 1, "satisfied_pct": 100.0}
    assert cy["customer_csat"] == {"count": 0, "satisfied_pct": None}
    assert g[None]["customer_csat"] == {"count": 1, "satisfied_pct": 0.0}  # c3, no agent


async def test_staff_figures_by_team_and_owner(
    scenario: list[uuid.UUID], client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    team = await _groups(client, token, "team")
    care, sales = team["care"], team["sales"]
    assert (care["followups_completed"], care["followups_overdue_now"]) == (2, 1)
    assert care["interactions_logged"] == 3 and sales["interactions_logged"] == 0
    assert care["complaints_handled"] == 2 and sales["complaints_handled"] == 1
    # first responses 300, 600, 1200: p90 = 600 + 0.8 x 600
    assert care["first_response"] == {"count": 3, "p50_seconds": 600.0, "p90_seconds": 1080.0}
    assert care["sla_compliance_pct"] == 80.0  # 4 of 5 decided targets
    assert care["revisit_compliance_pct"] == 66.67
    assert care["customer_csat"] == {"count": 3, "satisfied_pct": 66.67}

    owner = await _groups(client, token, "owner")
    one, two = owner["own-1"], owner["own-2"]
    assert (one["followups_completed"], one["followups_completed_on_time_pct"]) == (2, 50.0)
    assert (one["followups_overdue_now"], two["followups_overdue_now"]) == (0, 1)
    # own-1: c1 last contacted 20 days ago (A: 14), c2 1 day ago (B: 30); own-2: c3 (C: 90).
    assert (one["revisit_customers"], one["revisit_compliance_pct"]) == (2, 50.0)
    assert two["revisit_compliance_pct"] == 100.0
    assert (one["interactions_logged"], two["interactions_logged"]) == (3, 1)
    assert (one["complaints_handled"], one["sla_compliance_pct"]) == (2, 80.0)
    assert one["customer_csat"] == {"count": 3, "satisfied_pct": 66.67}
    assert two["customer_csat"] == {"count": 1, "satisfied_pct": 0.0}


async def test_complaint_stats_group_by_assignee_team_and_tier(
    scenario: list[uuid.UUID], client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    headers = auth(token("analyst"))
    found = {}
    for group_by in ("assignee", "team", "tier"):
        response = await client.get(
            "/complaints/stats", params={**PERIOD, "group_by": group_by}, headers=headers
        )
        assert response.status_code == 200, response.text
        found[group_by] = {g["key"]: g for g in response.json()["groups"]}
    assert {k: g["received"] for k, g in found["assignee"].items()} == {"ana": 2, "bo": 1, "cy": 1}
    assert found["assignee"]["ana"]["sla_compliance_pct"] == 75.0  # as in staff performance
    assert {k: g["received"] for k, g in found["team"].items()} == {"care": 3, "sales": 1}
    assert {k: g["received"] for k, g in found["tier"].items()} == {"A": 1, "B": 2, "C": 1}


async def test_management_report_as_json_and_as_html(
    scenario: list[uuid.UUID],
    analytics_db: AnalyticsDb,
    client: httpx.AsyncClient,
    token: Callable[..., str],
) -> None:
    c1, c2, _ = scenario
    headers = auth(token("manager"))
    # Inside this month however early in it the test runs (the scenario's dates reach ten days
    # back, into last month on the 1st to the 10th): a second ago, or the month's first instant.
    inside = max(NOW - timedelta(seconds=1), NOW.replace(day=1, hour=0, minute=0, second=0))
    ago = (NOW - inside).total_seconds() / 86_400
    # Due halfway between now and the month's end: not overdue yet, in a month still running.
    month_end = report_period("month", NOW)[2]
    later = -(month_end - NOW).total_seconds() / 2 / 86_400
    await analytics_db.apply(
        [
            purchase(c2, "5000", at=inside),  # c2 overtakes c1: a tier move this month
            survey(c1, {"overall": 5}, at=inside),
            *complaint(c2, "ana", "care", ago, first_response_s=60, resolution_s=None),
            contact(c1, "bo", ago),
            *followup(c1, "bo", due=later),
        ]
    )
    await analytics_db.rerank()
    params = {"period": "month", "at": NOW.isoformat()}
    response = await client.get("/reports/management", params=params, headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["from"][:8] == NOW.strftime("%Y-%m-") and report["from"][8:10] == "01"
    movements = report["tier_movements"]
    assert (movements["up"], movements["down"], movements["new"]) >= (1, 1, 3)
    movers = {m["customer_id"]: m for m in movements["biggest_movers"]}
    assert movers[str(c2)]["tier"] == "A" and movers[str(c1)]["tier"] in ("B", "C")
    overall = next(d for d in report["satisfaction"] if d["dimension"] == "overall")
    assert overall["target_pct"] == 95.0 and overall["count"] >= 1
    assert report["complaints"]["received"] >= 1
    staff = {g["key"]: g for g in report["staff"]}
    assert set(staff) >= {"ana", "bo"}
    # bo's follow-ups: one cancelled, one due in five days, one due later this month.
    assert staff["bo"]["followups_overdue_now"] == 0
    assert staff["ana"]["followups_overdue_now"] == 1
    assert "staff.followups_completed" in report["definitions"]

    page = await client.get(
        "/reports/management", params=params, headers={**headers, "Accept": "text/html"}
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Management report</h1>" in page.text and "ana" in page.text
    assert "Satisfaction against target" in page.text
    bad = await client.get("/reports/management", params={"period": "year"}, headers=headers)
    assert bad.status_code == 422
    # The week before year 1 and the month after 9999-12 are not on the calendar: a 422 that
    # names `at`, not the 500 an OverflowError gave.
    for edge in (
        {"period": "week", "at": "0001-01-01T00:00:00Z"},
        {"period": "month", "at": "9999-12-31T23:00:00Z"},
    ):
        beyond = await client.get("/reports/management", params=edge, headers=headers)
        assert beyond.status_code == 422, beyond.text
        assert beyond.json()["at"] == edge["at"].replace("Z", "+00:00")


async def test_the_management_report_counts_every_customer_newly_at_high_risk_and_lists_50(
    analytics_db: AnalyticsDb, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    headers = auth(token("manager"))
    params = {"period": "month", "at": NOW.isoformat()}

    async def churn() -> dict[str, Any]:
        response = await client.get("/reports/management", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json()["churn"])

    before = await churn()
    # 55 customers idle 110 days after a 10-day rhythm, with an open complaint: score 85, high.
    customers = ids(55)
    events = []
    for c in customers:
        events += [purchase(c, "10", at=days_ago(d)) for d in (130, 120, 110)]
        events.append(complaint_received(c, uuid.uuid4(), days_ago(20)))
    await analytics_db.apply(events)

    after = await churn()
    assert after["new_high_risk_count"] - before["new_high_risk_count"] == 55
    assert sum(after["by_owner"].values()) == after["new_high_risk_count"]
    listed = after["new_high_risk"]
    assert len(listed) == 50
    assert [n["score"] for n in listed] == sorted((n["score"] for n in listed), reverse=True)
    ours = [n for n in listed if uuid.UUID(n["customer_id"]) in set(customers)]
    assert all(n["score"] == 85 and n["reasons"] for n in ours)
