"""The console in Debian's chromium, driven by Playwright, over the real APIs with `make demo`'s
data set: what a manager, an agent and an analyst see and do."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.console.vendor import ECHARTS
from tests.console.stack import Stack
from tests.security.stack import seed

pytestmark = pytest.mark.timeout(600)

CHARTS = ("tiers", "pareto", "satisfaction", "nps", "complaints")
# An e-mail address with a readable local part; masked ones (`a***@example.com`) do not match.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# How many pixels of a canvas are not transparent.
INKED_PIXELS = """canvas => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { inked++; } }
  return inked;
}"""


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-US", extra_http_headers={})
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def sign_in(page: Page, stack: Stack, subject: str) -> None:
    await page.goto(stack.console + "/login")
    await page.click(f"button[name=subject][value='{subject}']")
    await expect(page.get_by_test_id("user")).to_be_visible()


async def test_a_manager_sees_the_dashboard_charts_and_follows_the_churn_list_to_a_customer(
    stack: Stack, page: Page
) -> None:
    await sign_in(page, stack, "manager-1")
    assert page.url == stack.console + "/dashboard"
    if shutil.which("npm"):
        assert ECHARTS.exists(), "make install builds ECharts when npm is here"
    if ECHARTS.exists():
        await expect(page.locator("body")).to_have_attribute("data-charts", "rendered")
        for name in CHARTS:
            chart = page.locator(f"[data-chart={name}]")
            await expect(chart).to_have_attribute("data-rendered", "true")
            # ECharts drew it: a canvas in the chart's box with ink on it, and a description of
            # the series in the page's language for screen readers.
            assert await chart.locator("canvas").evaluate(INKED_PIXELS) > 2000, name
            await expect(chart).to_have_attribute("aria-label", re.compile("This is a"))
    else:
        await expect(page.get_by_test_id("no-charts")).to_be_visible()
    # The report panel comes after the charts, from its own route (test_console_report_panel).
    await expect(page.locator("[data-panel=report]")).to_have_attribute("data-loaded", "ok")
    # Every panel came back with its figures; staff and the report are analytics' newest
    # endpoints: until they exist their panels say "not available yet", never an error.
    for name in ("tiers", "pareto", "satisfaction", "nps", "complaints", "churn"):
        assert await page.locator(f"[data-panel={name}] [data-state]").count() == 0, name
    for name in ("staff", "report"):
        state = page.locator(f"[data-panel={name}] [data-state]")
        if await state.count():
            await expect(state).to_have_attribute("data-state", "missing")
            await expect(state).to_have_text("Not available yet")
    tier_rows = page.locator("[data-panel=tiers] tbody tr")
    assert await tier_rows.count() >= 1

    churn = page.get_by_test_id("churn-list").locator("tbody tr")
    assert await churn.count() >= 1
    # The first customer profiles knows: analytics also ranks customers other tests fed it
    # events for without a profile (their page says not found).
    first = None
    for n in range(await churn.count()):
        href = await churn.nth(n).locator("a").get_attribute("href")
        assert href and re.fullmatch(r"/customers/[0-9a-f-]{36}", href)
        if (await stack.clients["profiles"].get(href)).status_code == 200:
            first = churn.nth(n)
            break
    assert first is not None, "no customer of the churn list has a profile"
    owner = (await first.locator("td").nth(2).inner_text()).strip()
    link = first.locator("a")
    href = await link.get_attribute("href")
    assert href is not None
    await link.click()
    await expect(page).to_have_url(stack.console + href)
    await expect(page.get_by_test_id("customer-name")).to_be_visible()
    for name in ("profile", "insights", "timeline", "complaints"):
        assert await page.locator(f"[data-panel={name}] [data-state]").count() == 0, name
    await expect(page.locator("[data-panel=profile]")).to_contain_text(owner)
    # A customer who bought is a loyalty member by now, or (still being enrolled) not yet one:
    # never an error (test_console_forms checks the member's figures).
    assert await page.locator("[data-panel=loyalty] [data-state=error]").count() == 0


async def test_an_agent_completes_a_follow_up_from_the_agenda_and_it_leaves_the_list(
    stack: Stack, page: Page
) -> None:
    customer = await _customer(stack)
    note = f"Send the quote {uuid.uuid4().hex[:8]}"
    response = await stack.clients["interactions"].post(
        "/followups",
        json={
            "customer_id": customer["id"],
            "kind": "needs_check",
            "due_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
            "assignee_id": "agent-1",
            "note": note,
        },
    )
    assert response.status_code == 201, response.text
    followup = response.json()

    await sign_in(page, stack, "agent-1")
    assert page.url == stack.console + "/workspace"
    row = page.locator(f"[data-group=overdue] tr[data-followup='{followup['id']}']")
    await expect(row).to_contain_text(note)
    await row.get_by_role("button", name=re.compile("Complete")).click()

    await expect(page.get_by_test_id("flash")).to_have_text("Follow-up completed.")
    await expect(page.locator(f"tr[data-followup='{followup['id']}']")).to_have_count(0)
    stored = await stack.clients["interactions"].get(f"/followups/{followup['id']}")
    assert stored.json()["status"] == "done"


async def test_an_agent_moves_a_complaint_and_logs_an_interaction_through_the_console(
    stack: Stack, page: Page
) -> None:
    customer = await _customer(stack)
    response = await stack.clients["complaints"].post(
        "/complaints",
        json={
            "customer_id": customer["id"],
            "channel": "phone",
            "subject": "Late delivery",
            "description": "The parcel is a week late.",
            "category": "delivery",
            "severity": "medium",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    complaint = response.json()
    assigned = await stack.clients["complaints"].post(
        f"/complaints/{complaint['id']}/assignment", json={"assignee": "agent-1"}
    )
    assert assigned.status_code == 200, assigned.text

    await sign_in(page, stack, "agent-1")
    row = page.locator(f"[data-panel=cases] tr[data-complaint='{complaint['id']}']")
    await expect(row).to_contain_text("received")
    await row.get_by_label("Move to").select_option("acknowledged")
    await row.get_by_role("button", name="Move").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Complaint moved.")
    stored = await stack.clients["complaints"].get(f"/complaints/{complaint['id']}")
    assert stored.json()["status"] == "acknowledged"

    await page.goto(f"{stack.console}/customers/{customer['id']}")
    subject = f"Called about the parcel {uuid.uuid4().hex[:6]}"
    form = page.locator("[data-panel=log] form")
    await form.get_by_label("Channel").select_option("phone")
    await form.get_by_label("Subject").fill(subject)
    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_test_id("flash")).to_have_text("Interaction logged.")
    await expect(page.locator("[data-panel=timeline]")).to_contain_text(subject)


async def test_an_analyst_never_sees_an_unmasked_email_anywhere(stack: Stack, page: Page) -> None:
    seeded = await seed(stack.clients, {})  # admin headers are the clients' own
    customer_id = seeded.customer["id"]
    number = seeded.customer["customer_number"]

    await sign_in(page, stack, "analyst-1")
    assert page.url == stack.console + "/dashboard"
    pages = ["/dashboard", "/workspace", f"/customers/{customer_id}", f"/customers?q={number}"]
    for path in pages:
        await page.goto(stack.console + path)
        if path == "/dashboard":  # its report panel is in the page once loaded
            report = page.locator("[data-panel=report]")
            await expect(report).to_have_attribute("data-loaded", "ok")
        html = await page.content()
        found = [m.group(0) for m in EMAIL.finditer(html)]
        assert not found, (path, found)
        assert not [e for e in seeded.emails if e.lower() in html.lower()], path
        # An analyst reads; the console offers no action form.
        assert await page.locator("form[action^='/actions/']").count() == 0, path
    # The customer's e-mail is there, masked as the API masks it.
    await page.goto(f"{stack.console}/customers/{customer_id}")
    await expect(page.get_by_test_id("email")).to_contain_text("***@")


async def _customer(stack: Stack) -> dict[str, Any]:
    u = uuid.uuid4().hex[:8]
    response = await stack.clients["profiles"].post(
        "/customers",
        json={
            "kind": "organisation",
            "display_name": f"Console Test Trading {u}",
            "email": f"buyer.{u}@example.com",
            "owner_id": "agent-1",
            "external_ref": f"console-{u}",
        },
        headers={"Idempotency-Key": f"console-{u}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


UNLABELLED = """() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button')]
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.textContent.trim())
    .map(el => el.outerHTML.slice(0, 120))"""


async def test_the_pages_work_from_the_keyboard_and_every_control_is_labelled(
    stack: Stack, page: Page
) -> None:
    await page.goto(stack.console + "/login")
    # Skip link first, then the header, then the sign-in buttons: Tab until the manager's.
    for _ in range(15):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.value || ''")
        if focused == "manager-1":
            break
    assert focused == "manager-1", "the manager's sign-in button is not reachable by Tab"
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(stack.console + "/dashboard")

    await page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    await expect(skip).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()

    customer = await _customer(stack)
    for path in ("/dashboard", "/workspace", "/customers", f"/customers/{customer['id']}"):
        await page.goto(stack.console + path)
        assert await page.evaluate(UNLABELLED) == [], path
