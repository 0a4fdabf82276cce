"""The dashboard does not wait for the management report: its HTML answers without calling
`GET /reports/management`, and the page's script loads the report panel after the charts.

Analytics is reached through a forwarding proxy (a real HTTP server in front of the real
analytics) that records every path the console asks for and holds `/reports/management` until
the test lets it go, with an error: the report is slow, then fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from playwright.async_api import Browser, expect

from services.console.config import Settings as ConsoleSettings
from services.console.main import create_app as console_app
from services.console.vendor import ECHARTS
from tests.console.stack import Stack, http_server
from tests.console.test_console_browser import CHARTS, sign_in

pytestmark = pytest.mark.timeout(300)

REPORT = "/reports/management"


@dataclass
class Gate:
    """What the proxy saw, and the hold on the report: set `release` to answer it with 503."""

    paths: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def analytics_proxy(analytics: str, gate: Gate) -> FastAPI:
    client = httpx.AsyncClient(base_url=analytics, timeout=60)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        path = "/" + path
        gate.paths.append(path)
        if path == REPORT:
            await gate.release.wait()
            problem = {"title": "Service Unavailable", "status": 503, "detail": "report store down"}
            return Response(json.dumps(problem), 503, media_type="application/problem+json")
        query = request.url.query
        answer = await client.request(
            request.method,
            path + (f"?{query}" if query else ""),
            headers={k: v for k, v in request.headers.items() if k in ("authorization", "accept")},
            content=await request.body(),
        )
        return Response(
            answer.content, answer.status_code, media_type=answer.headers.get("content-type")
        )

    return app


@contextlib.asynccontextmanager
async def console_behind(stack: Stack, gate: Gate, **overrides: Any) -> AsyncIterator[str]:
    """A console whose analytics is the proxy in front of the stack's analytics."""
    async with http_server(analytics_proxy(stack.urls["analytics"], gate)) as proxy:
        settings = ConsoleSettings(
            CONSOLE_PROFILES_URL=stack.urls["profiles"],
            CONSOLE_INTERACTIONS_URL=stack.urls["interactions"],
            CONSOLE_COMPLAINTS_URL=stack.urls["complaints"],
            CONSOLE_ANALYTICS_URL=proxy,
            CONSOLE_LOYALTY_URL=stack.urls["profiles"],  # unused by the dashboard
            **overrides,
        )
        try:
            async with http_server(console_app(settings)) as console:
                yield console
        finally:
            gate.release.set()  # no request left hanging at shutdown


@contextlib.asynccontextmanager
async def signed_in(console: str, subject: str, language: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=console, timeout=60, headers={"Accept-Language": language}
    ) as client:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token, "no CSRF token on the login page"
        done = await client.post("/login/dev", data={"csrf_token": token[1], "subject": subject})
        assert done.status_code == 303, done.text
        yield client


async def test_the_dashboard_html_answers_without_asking_for_the_management_report(
    stack: Stack,
) -> None:
    gate = Gate()  # never released while the dashboard is read: the report would hang
    async with console_behind(stack, gate) as console:
        async with signed_in(console, "manager-1", "en") as client:
            response = await client.get("/dashboard")
    assert response.status_code == 200
    html = response.text
    for name in CHARTS:
        assert f'id="chart-{name}"' in html, name  # the charts' data is in the page
    assert "/tiers" in gate.paths and "/staff/performance" in gate.paths
    assert REPORT not in gate.paths
    # The report's place: a live region with a plain link for a browser without JavaScript.
    region = re.search(r'<section[^>]*data-panel="report"[^>]*>', html)
    assert region and 'aria-live="polite"' in region[0]
    assert 'data-fragment="/dashboard/report/panel"' in region[0]
    assert '<a href="/dashboard/report" data-fragment-link>' in html
    # The script may fetch from the console itself and nothing runs inline: the CSP holds.
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "script-src 'self';" in policy
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in s or 'type="application/json"' in s for s in scripts)


async def test_the_report_panel_arrives_after_the_charts_and_shows_an_upstream_failure(
    stack: Stack, browser: Browser
) -> None:
    gate = Gate()
    # The console waits for the held report longer than the test holds it.
    async with console_behind(stack, gate, CONSOLE_UPSTREAM_TIMEOUT_S=120) as console:
        context = await browser.new_context(locale="en-US")
        try:
            page = await context.new_page()
            await sign_in(page, Stack(stack.urls, console, stack.clients), "manager-1")
            assert page.url == console + "/dashboard"
            panel = page.locator("[data-panel=report]")
            # The report is held upstream; the charts are drawn and the panel says it is busy.
            if ECHARTS.exists():
                await expect(page.locator("body")).to_have_attribute("data-charts", "rendered")
                for name in CHARTS:
                    chart = page.locator(f"[data-chart={name}]")
                    await expect(chart).to_have_attribute("data-rendered", "true")
            await expect(panel).to_have_attribute("aria-busy", "true")
            await expect(panel.get_by_test_id("report-pending")).to_be_visible()
            assert REPORT in gate.paths  # asked for by the page's script, not the page

            gate.release.set()  # analytics answers 503
            await expect(panel).to_have_attribute("data-loaded", "error")
            await expect(panel).to_have_attribute("aria-busy", "false")
            state = panel.locator("[data-state=error]")
            await expect(state).to_have_text(
                re.compile(r"^The management report could not be loaded: report store down")
            )
            await expect(state.get_by_role("link")).to_have_attribute("href", "/dashboard/report")
            # The rest of the page is untouched.
            for name in ("tiers", "satisfaction", "complaints", "churn", "staff"):
                assert await page.locator(f"[data-panel={name}] [data-state]").count() == 0
        finally:
            await context.close()


async def test_a_report_that_times_out_is_an_error_in_the_pages_language(stack: Stack) -> None:
    gate = Gate()  # held past the console's upstream timeout
    async with console_behind(stack, gate, CONSOLE_UPSTREAM_TIMEOUT_S=1) as console:
        async with signed_in(console, "manager-1", "zh-CN") as client:
            panel = await client.get("/dashboard/report/panel")
            page = await client.get("/dashboard/report")
    assert panel.status_code == 502
    assert panel.headers["content-type"].startswith("text/html")
    assert "<html" not in panel.text  # a fragment, not a page
    assert 'data-state="error"' in panel.text
    assert "管理报告未能加载: 分析服务响应超时" in panel.text
    # The no-JavaScript page says the same inside the console's layout.
    assert page.status_code == 502
    assert "<html" in page.text and "分析服务响应超时" in page.text
