"""The dashboard's staff table and management report in chromium, over the real analytics
service with figures made through the real APIs: a fresh agent logs interactions, completes one
follow-up on time and one late, leaves one overdue, handles a complaint to resolution, and the
customer answers a survey. The panels must show that agent's figures and the report's values."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.stack import Stack
from tests.console.test_console_browser import _customer, sign_in
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(600)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code in (200, 201), (path, response.text)
    return dict(response.json())


async def _agents_month(stack: Stack, agent: str) -> dict[str, Any]:
    """Make the agent's month through the APIs; return analytics' figures once it has them all."""
    interactions, complaints = stack.clients["interactions"], stack.clients["complaints"]
    customer = await _customer(stack)
    now = datetime.now(UTC)
    # Inside this calendar month (the management report's) however early in it the test runs.
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def ago(minutes: int) -> datetime:
        return max(now - timedelta(minutes=minutes), month)

    for minutes in (2, 1):
        await _post(
            interactions,
            "/interactions",
            {
                "customer_id": customer["id"],
                "channel": "phone",
                "direction": "outbound",
                "occurred_at": ago(minutes).isoformat(),
                "agent_id": agent,
            },
        )
    # Due tomorrow and done now (on time), due a minute ago and done now (late), and one
    # due a minute ago left open (overdue now).
    followups = []
    for due in (now + timedelta(days=1), ago(1), ago(1)):
        followups.append(
            await _post(
                interactions,
                "/followups",
                {
                    "customer_id": customer["id"],
                    "kind": "revisit",
                    "due_at": due.isoformat(),
                    "assignee_id": agent,
                },
            )
        )
    for followup in followups[:2]:
        await _post(interactions, f"/followups/{followup['id']}/complete", {})
    await _post(
        interactions,
        "/surveys",
        {"customer_id": customer["id"], "scores": {"overall": 5, "service": 3}},
    )

    complaint = await _post(
        complaints,
        "/complaints",
        {
            "customer_id": customer["id"],
            "channel": "phone",
            "subject": "Wrong size",
            "description": "The shoes are a size too small.",
            "category": "delivery",
            "severity": "low",
        },
    )
    await _post(complaints, f"/complaints/{complaint['id']}/assignment", {"assignee": agent})
    for step in (
        {"to_status": "acknowledged"},
        {"to_status": "investigating"},
        {"to_status": "resolved", "resolution": "Exchanged for the next size."},
    ):
        await _post(complaints, f"/complaints/{complaint['id']}/transitions", step)

    figures: dict[str, Any] = {}

    async def analytics_has_the_month() -> bool:
        response = await stack.clients["analytics"].get("/staff/performance")
        assert response.status_code == 200, response.text
        found = [g for g in response.json()["groups"] if g["key"] == agent]
        if not found:
            return False
        figures.update(found[0])
        return (
            figures["interactions_logged"] == 2
            and figures["followups_completed"] == 2
            and figures["followups_overdue_now"] == 1
            and figures["complaints_handled"] == 1
            and figures["customer_csat"]["count"] == 2
        )

    await eventually(analytics_has_the_month, timeout=120, interval=0.5)
    return figures


def _cells(row: Any) -> dict[str, Any]:
    return {name: row.locator(f"[data-figure={name}]") for name in FIGURES}


# p50 and p90 of a single complaint are the same span: `12 s / 12 s`, `3 min / 3 min`.
ONE_DURATION = re.compile(r"^(\d+ s|\d+ min) / \1$")
FIGURES = (
    "followups_completed",
    "followups_on_time_pct",
    "followups_overdue_now",
    "revisit_compliance_pct",
    "interactions_logged",
    "complaints_handled",
    "first_response",
    "resolution",
    "sla_compliance_pct",
    "customer_csat",
)


async def _assert_agents_row(page: Page, panel: str, agent: str) -> None:
    row = page.locator(f"[data-panel={panel}] tr[data-staff='{agent}']")
    await expect(row).to_have_count(1)
    await expect(row.locator("th")).to_have_text(agent)
    cells = _cells(row)
    await expect(cells["followups_completed"]).to_have_text("2")
    await expect(cells["followups_on_time_pct"]).to_have_text("50.0")  # one of the two late
    await expect(cells["followups_overdue_now"]).to_have_text("1")
    # The one customer (untiered: 90-day cadence) was contacted a minute ago.
    await expect(cells["revisit_compliance_pct"]).to_have_text("100.0 (1)")
    await expect(cells["interactions_logged"]).to_have_text("2")
    await expect(cells["complaints_handled"]).to_have_text("1")
    # One complaint: p50 = p90, seconds of SLA time in the unit that fits.
    await expect(cells["first_response"]).to_have_text(ONE_DURATION)
    await expect(cells["resolution"]).to_have_text(ONE_DURATION)
    await expect(cells["sla_compliance_pct"]).to_have_text("100.0")
    await expect(cells["customer_csat"]).to_have_text("50.0 (2)")  # answers 5 and 3


async def test_the_staff_table_and_the_management_report_show_an_agents_real_month(
    stack: Stack, browser: Browser
) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    await _agents_month(stack, agent)
    response = await stack.clients["analytics"].get(
        "/reports/management", params={"period": "month"}
    )
    assert response.status_code == 200, response.text
    report = response.json()

    context = await browser.new_context(locale="en-US")
    try:
        page = await context.new_page()
        await sign_in(page, stack, "manager-1")
        assert page.url == stack.console + "/dashboard"
        # The report panel is fetched after the charts are drawn: wait until it is in.
        panel = page.locator("[data-panel=report]")
        await expect(panel).to_have_attribute("data-loaded", "ok")
        for name in ("staff", "report"):
            assert await page.locator(f"[data-panel={name}] [data-state]").count() == 0, name
        await _assert_agents_row(page, "staff", agent)
        await _assert_agents_row(page, "report", agent)

        await expect(panel.get_by_test_id("report-period")).to_contain_text("This month")
        # Tier movements as analytics counted them when the console asked: between the report
        # read before the page and one read after it (a debounced re-rank can give a customer
        # created moments ago, this test's own included, its first tier in between, or move
        # another test's customer either way).
        after = await stack.clients["analytics"].get(
            "/reports/management", params={"period": "month"}
        )
        assert after.status_code == 200, after.text
        for name in ("up", "down", "new"):
            figure = panel.locator(f"[data-section=tier_movements] [data-figure={name}]")
            shown = int(await figure.inner_text())
            reads = report["tier_movements"][name], after.json()["tier_movements"][name]
            assert min(reads) <= shown <= max(reads), (name, reads, shown)
        # The complaints and satisfaction of the month, at least this agent's, as analytics
        # counts them (nothing else writes while this test runs).
        complaints = report["complaints"]
        assert complaints["received"] >= 1 and complaints["resolved"] >= 1
        section = panel.locator("[data-section=complaints]")
        received = section.locator("[data-figure=received]")
        await expect(received).to_have_text(
            f"{complaints['received']} (previous {complaints['previous_received']})"
        )
        for name in ("open", "resolved"):
            await expect(section.locator(f"[data-figure={name}]")).to_have_text(
                str(complaints[name])
            )
        dimensions = {d["dimension"]: d for d in report["satisfaction"]}
        assert {"overall", "service"} <= set(dimensions)
        for name, figure in dimensions.items():
            row = panel.locator(f"[data-section=satisfaction] tr[data-dimension={name}]")
            cells = row.locator("td")
            await expect(cells.nth(0)).to_have_text(str(figure["count"]))
            await expect(cells.nth(1)).to_have_text(_pct(figure["satisfied_pct"]))
            await expect(cells.nth(2)).to_have_text(_pct(figure["target_pct"]))
        await expect(panel.locator("[data-figure=nps_target]")).to_have_text(
            _pct(report["nps_target"])
        )
        await expect(panel.locator("[data-figure=left_high_risk]")).to_have_text(
            str(report["churn"]["left_high_risk"])
        )

        # The same panels in Chinese: labels translated, no API field name as a label.
        await page.goto(f"{stack.console}/lang/zh-CN?next=/dashboard")
        await expect(panel).to_have_attribute("data-loaded", "ok")
        staff = page.locator("[data-panel=staff]")
        await expect(staff.locator("h2")).to_have_text("员工绩效")
        header = staff.locator("table[data-table=staff] thead")
        await expect(header).to_contain_text("完成跟进")
        await expect(header).to_contain_text("回访达标率")
        await expect(panel.get_by_test_id("report-period")).to_contain_text("本月")
        await expect(panel).to_contain_text("等级变动")
        await expect(panel).to_contain_text("流失风险变化")
        await _assert_agents_row(page, "staff", agent)
        texts = await page.locator("[data-panel=staff], [data-panel=report]").all_inner_texts()
        assert not [t for t in texts if "followups_completed" in t or "tier_movements" in t]
    finally:
        await context.close()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{float(value):.1f}"
