"""Screenshots of the console's main pages for the README: `python -m services.console.screenshots`.

    python -m services.console.screenshots [--url http://127.0.0.1:8000] [--out docs/console]
                                           [--lang en|zh-CN]

Needs the running `make dev` stack (with `make demo`'s data for figures worth showing) and
Debian's chromium (`apt-get install chromium`), driven by Playwright. Signs in as the dev users.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from playwright.async_api import Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
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


async def sign_in(page: Page, url: str, subject: str) -> None:
    await page.goto(f"{url}/login")
    await page.click(f"button[name=subject][value='{subject}']")
    await page.wait_for_load_state("networkidle")


async def shoot(url: str, out: Path, lang: str) -> list[Path]:
    taken: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:

            async def save(page: Page, name: str) -> None:
                path = out / f"{name}.png"
                await page.screenshot(path=str(path), full_page=True)
                taken.append(path)

            async def new_page() -> Page:
                context = await browser.new_context(
                    locale=lang, viewport={"width": 1360, "height": 900}
                )
                return await context.new_page()

            page = await new_page()
            await page.goto(f"{url}/login")
            await save(page, "login")

            await sign_in(page, url, "manager-1")
            await page.goto(f"{url}/dashboard")
            await page.wait_for_selector("body[data-charts=rendered]", timeout=15_000)
            await page.wait_for_selector("[data-panel=report][data-loaded]", timeout=30_000)
            await save(page, "dashboard" if lang == "en" else f"dashboard-{lang}")
            churn = page.locator("[data-testid=churn-list] a").first
            if await churn.count():
                await churn.click()
                await page.wait_for_load_state("networkidle")
                await save(page, "customer")

            page = await new_page()
            await sign_in(page, url, "agent-1")
            await page.goto(f"{url}/workspace")
            await save(page, "workspace")

            page = await new_page()
            await sign_in(page, url, "analyst-1")
            link = page.locator("[data-testid=churn-list] a").first
            if await link.count():
                await link.click()
                await page.wait_for_load_state("networkidle")
                await save(page, "customer-analyst")
        finally:
            await browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.console.screenshots")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    parser.add_argument("--lang", default="en", choices=["en", "zh-CN"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.url.rstrip("/"), args.out, args.lang)):
        print(path)


if __name__ == "__main__":
    main()
