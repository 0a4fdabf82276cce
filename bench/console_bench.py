"""The console's dashboard at 100,000 customers: server time of `GET /dashboard` and the first
render in chromium (navigation until every chart is drawn), then how long after the charts the
management report panel arrives (the page's script fetches it once the charts are painted).

    .venv/bin/python -m bench.console_bench [--customers 100000] [--runs 10]

Starts its own embedded PostgreSQL and broker unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are
set; fills a fresh analytics database with customers and Pareto-like purchases in SQL (as
`bench.analytics_bench` does), re-ranks, serves analytics and the console in-process, signs in
as the dev manager and measures. Profiles is not started: the churn list's ten name look-ups
fail fast (connection refused) instead of taking their few milliseconds. Writes
bench/console_report.json (or --out). `make bench` runs it as its console_dashboard scenario
(`make bench BENCH_ARGS="--only console"` alone). Reported, not asserted (the issue's
target: first render < 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from bench.analytics_bench import _fresh_database, fill_customers
from shared.devstack import ROOT, free_port, infrastructure

REPORT = ROOT / "bench" / "console_report.json"
# What the browser asks the console for, by name: the page, then its report panel.
PAGES = {"dashboard": "/dashboard", "report_panel": "/dashboard/report/panel"}
CHROMIUM = "/usr/bin/chromium"


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def fill(url: str, customers: int) -> dict[str, float]:
    """Customers with two purchases each (Pareto margins), then the global re-rank."""
    from services.analytics.config import Settings
    from services.analytics.recompute import rerank
    from shared.db import create_engine, session_factory

    settings = Settings(service_database_url=url, db_statement_timeout_ms=3_600_000)
    engine = create_engine(settings)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await fill_customers(conn, customers, 2)
            await conn.execute(sa.text("ANALYZE"))
        loaded = time.perf_counter() - started
        async with session_factory(engine).begin() as session:
            await rerank(session, settings)
    finally:
        await engine.dispose()
    return {
        "load_s": round(loaded, 1),
        "rerank_s": round(time.perf_counter() - started - loaded, 1),
    }


def dashboard_reads(now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    """The analytics reads of the dashboard (services/console/pages.py), by name: the first five
    `GET /dashboard` makes, the last its report panel's (`GET /dashboard/report/panel`)."""
    year_ago = (now - timedelta(days=365)).replace(day=1, hour=0, minute=0, second=0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0)
    return [
        ("tiers", "/tiers", {"limit": 200}),
        (
            "satisfaction",
            "/satisfaction",
            {"group_by": "month", "from": year_ago.isoformat(), "to": now.isoformat()},
        ),
        (
            "complaints_stats",
            "/complaints/stats",
            {"group_by": "category", "from": (now - timedelta(days=90)).isoformat()},
        ),
        ("churn_risk", "/churn-risk", {"limit": 10}),
        (
            "staff_performance",
            "/staff/performance",
            {"from": month_start.isoformat(), "to": now.isoformat()},
        ),
        ("management_report", "/reports/management", {"period": "month"}),
    ]


async def breakdown(analytics: str, runs: int) -> dict[str, Any]:
    """Each of the dashboard's analytics reads alone: median ms and response size."""
    from shared.auth import issue_token
    from shared.settings import ServiceSettings

    token = issue_token(ServiceSettings(), "manager", subject="manager-1")
    now = datetime.now(UTC).replace(microsecond=0)
    result: dict[str, Any] = {}
    async with httpx.AsyncClient(
        base_url=analytics, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for name, path, params in dashboard_reads(now):
            timings, size = [], 0
            for _ in range(max(3, runs // 3)):
                started = time.perf_counter()
                response = await client.get(path, params=params)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code, response.text)
                size = len(response.content)
            result[name] = {"p50_ms": round(statistics.median(timings), 1), "bytes": size}
    return result


async def measure(console: str, runs: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=console, timeout=60) as client:
        login = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token, "no CSRF token on the login page"
        await client.post("/login/dev", data={"csrf_token": token[1], "subject": "manager-1"})
        timings: dict[str, list[float]] = {name: [] for name in PAGES}
        for _ in range(runs):
            for name, path in PAGES.items():
                started = time.perf_counter()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code)
        # The report's figures, not a "not available" state.
        assert 'data-testid="report-period"' in response.text, response.text
    result: dict[str, Any] = {}
    for name, values in timings.items():
        result[f"{name}_server_first_ms"] = round(values[0], 1)
        result[f"{name}_server_p50_ms"] = round(statistics.median(values), 1)
        result[f"{name}_server_max_ms"] = round(max(values), 1)
    if shutil.which(CHROMIUM) or shutil.which("chromium"):
        result.update(await first_render(console, runs))
    return result


async def first_render(console: str, runs: int) -> dict[str, Any]:
    """Navigation start to every chart drawn, in the signed-in tab; then to the report panel in
    place (waited for each time, so no report is still being read when the next run starts)."""
    from playwright.async_api import async_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    renders, reports = [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{console}/login")
            await page.click("button[name=subject][value='manager-1']")
            # Signing in lands on the dashboard: let its report panel arrive before measuring.
            await page.wait_for_selector("[data-panel=report][data-loaded]", timeout=60_000)
            for _ in range(runs):
                started = time.perf_counter()
                await page.goto(f"{console}/dashboard")
                await page.wait_for_selector("body[data-charts=rendered]", timeout=30_000)
                renders.append((time.perf_counter() - started) * 1000)
                panel = await page.wait_for_selector(
                    "[data-panel=report][data-loaded]", timeout=60_000
                )
                reports.append((time.perf_counter() - started) * 1000)
                assert panel and await panel.get_attribute("data-loaded") == "ok"
        finally:
            await browser.close()
    return {
        "first_render_first_ms": round(renders[0], 1),
        "first_render_p50_ms": round(statistics.median(renders), 1),
        "first_render_max_ms": round(max(renders), 1),
        "report_panel_in_place_first_ms": round(reports[0], 1),
        "report_panel_in_place_p50_ms": round(statistics.median(reports), 1),
        "report_panel_after_render_p50_ms": round(
            statistics.median(r - c for r, c in zip(reports, renders, strict=True)), 1
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from services.analytics.config import Settings as AnalyticsSettings
    from services.analytics.main import create_app as analytics_app
    from services.console.config import Settings as ConsoleSettings
    from services.console.main import create_app as console_app

    url = await _fresh_database(f"kehu_bench_console_{uuid.uuid4().hex[:6]}")
    figures = await fill(url, args.customers)
    analytics = analytics_app(
        AnalyticsSettings(
            service_database_url=url,
            consumer_enabled=False,
            catchup_every_s=0,
            rate_limit_per_s=0,
        )
    )
    async with serve(analytics) as analytics_url:
        reads = await breakdown(analytics_url, args.runs)
        nowhere = f"http://127.0.0.1:{free_port()}"
        console = console_app(
            ConsoleSettings(
                CONSOLE_ANALYTICS_URL=analytics_url,
                CONSOLE_PROFILES_URL=nowhere,
                CONSOLE_INTERACTIONS_URL=nowhere,
                CONSOLE_COMPLAINTS_URL=nowhere,
                CONSOLE_LOYALTY_URL=nowhere,
            )
        )
        async with serve(console) as console_url:
            timings = await measure(console_url, args.runs)
    return {
        "customers": args.customers,
        **figures,
        **timings,
        "target_first_render_ms": 1000,
        "analytics_reads": reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console_bench")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPORT, help="where the JSON goes")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kehu-bench-") as state,
        infrastructure(Path(state), fixed_ports=False) as (database_url, bootstrap),
    ):
        os.environ["DATABASE_URL"] = database_url
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        os.environ.setdefault("KEHU_STATE_DIR", state)
        result = asyncio.run(run(args))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
