"""The survey page in a real browser: Debian's chromium, driven by Playwright, opens the link
from the invitation e-mail the SMTP sink received, fills in the form and sends it; the survey
appears in interactions tied to the invitation, and the link is used up."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from tests.outreach.conftest import ADMIN, World, link_in

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def invitation_link(world: World, customer_id: str) -> tuple[dict[str, Any], str]:
    response = await world.client.post(
        world.urls["interactions"] + "/survey-invitations",
        json={"customer_id": customer_id},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    message = await world.message_in(customer_id, "sent", "survey_invitation")
    [mail] = await world.mail_of(message["id"])
    return response.json(), link_in(mail["body"], "/s/")


async def test_a_customer_answers_the_survey_in_a_browser(noon: World, browser: Browser) -> None:
    world = noon
    customer = await world.customer(language="en")
    invitation, link = await invitation_link(world, customer["id"])

    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    try:
        await page.goto(link)
        assert await page.title() == "Satisfaction survey"
        assert customer["display_name"] in await page.inner_text("main")
        await page.get_by_label("Overall 5").check()
        await page.get_by_label("Service 4").check()
        await page.get_by_label("Delivery 3").check()
        await page.get_by_label("NPS 9").check()
        await page.get_by_label("effort 2").check()
        await page.fill("textarea[name=comment]", "Quick and friendly, thank you.")
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert await page.title() == "Thank you for your feedback!"

        # The answer is in interactions, as the invitation's survey.
        surveys = await world.client.get(
            world.urls["interactions"] + "/surveys",
            params={"customer_id": customer["id"]},
            headers=ADMIN,
        )
        [survey] = surveys.json()["items"]
        assert survey["invitation_id"] == invitation["id"]
        assert survey["scores"] == {"overall": 5, "service": 4, "delivery": 3}
        assert (survey["nps"], survey["effort"], survey["channel"]) == (9, 2, "web")
        assert survey["comment"] == "Quick and friendly, thank you."
        answered = await world.client.get(
            f"{world.urls['interactions']}/survey-invitations/{invitation['id']}", headers=ADMIN
        )
        assert answered.json()["survey_id"] == survey["id"]

        # The link is used up: a clear page, in the browser too.
        response = await page.goto(link)
        assert response is not None and response.status == 410
        assert "This link was used already" in await page.inner_text("h1")
    finally:
        await page.close()


async def test_the_page_is_bilingual_and_fits_a_phone(noon: World, browser: Browser) -> None:
    world = noon
    customer = await world.customer(language="zh-CN")
    _, link = await invitation_link(world, customer["id"])
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    try:
        await page.goto(link)
        assert await page.title() == "满意度调查"
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, "the form must not scroll sideways on a phone"
        async with page.expect_navigation():
            await page.click("text=English")
        assert await page.title() == "Satisfaction survey"
        async with page.expect_navigation():
            await page.click("button[type=submit]")  # nothing rated
        assert "Please answer at least one rating question." in await page.inner_text("main")
        # The link is still open after a refused answer.
        assert (await world.client.get(link)).status_code == 200
    finally:
        await page.close()
