"""One running stack (the APIs, the console, `make demo`'s data set) and one chromium for every
console test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, Stack, console_stack, load_demo

DEMO_CUSTOMERS = 40
DEMO_SEED = 170017  # its plan has purchases, surveys and complaints (asserted below)


@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    async with console_stack() as running:
        plan = await load_demo(running, DEMO_CUSTOMERS, DEMO_SEED)
        assert any(c.complaints for c in plan) and any(c.surveys for c in plan)
        yield running


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
