"""The interactive docs work with no network beyond the service: a real browser opens `/docs`
and `/redoc` of a running service while every request to another host is refused."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Route, async_playwright

from shared.devstack import wait_for_port
from tests.helpers import ServiceProcess

# Debian's chromium: Playwright's own browser download is not reachable from here.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium is not installed: the docs-page test needs Debian's chromium "
            "(apt-get install -y chromium; .ci/run installs it when missing)"
        )
    return path


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = Path(tmp_path_factory.mktemp("docs")) / "profiles.log"
    service = ServiceProcess("profiles", dict(os.environ), log)
    service.start()
    try:
        wait_for_port(service.port)
        yield service.url
    finally:
        service.stop()


def operation_summaries(url: str) -> list[str]:
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    return [
        operation["summary"]
        for path_item in document["paths"].values()
        for operation in path_item.values()
        if "summary" in operation
    ]


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
async def test_docs_page_lists_the_operations_with_no_network_beyond_the_service(
    profiles: str, page_path: str
) -> None:
    summaries = operation_summaries(profiles)[:3]
    assert summaries, "the OpenAPI document has no operation summaries to look for"
    refused: list[str] = []

    async def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("blockedbyclient")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            await context.route("**/*", only_local)
            page = await context.new_page()
            await page.goto(f"{profiles}{page_path}")
            for summary in summaries:
                shown = page.get_by_text(summary, exact=True).filter(visible=True).first
                await shown.wait_for(state="visible", timeout=30_000)
        finally:
            await browser.close()
    assert refused == [], f"{page_path} asked for assets from other hosts: {refused}"
