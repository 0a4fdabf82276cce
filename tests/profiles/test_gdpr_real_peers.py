"""GDPR across services against the real interactions and complaints apps (served over HTTP
in-process), with analytics unreachable: export sections and erasure completion per service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from tests.conftest import auth
from tests.helpers import eventually
from tests.profiles.factories import create_customer, unique
from tests.profiles.test_data_protection import closed_port, running


async def test_erasure_completes_in_the_real_peers_and_the_export_has_their_sections(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, token: Callable[..., str]
) -> None:
    settings = app.state.settings
    saved = settings.peers()
    fast: dict[str, Any] = {"outbox_poll_interval_s": 0.2, "rate_limit_per_s": 0}
    interactions = interactions_app(InteractionsSettings(**fast))
    complaints = complaints_app(ComplaintsSettings(**fast))
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    async with running(interactions, lifespan="on") as i_url:
        async with running(complaints, lifespan="on") as c_url:
            settings.interactions_url, settings.complaints_url = i_url, c_url
            settings.analytics_url = closed_port()
            try:
                export = await client.get(url + "/gdpr-export", headers=admin)
                assert export.status_code == 200, export.text
                sections = {s["service"]: s for s in export.json()["services"]}
                assert sections["interactions"]["status"] == "ok", sections["interactions"]
                assert sections["complaints"]["status"] == "ok", sections["complaints"]
                assert sections["complaints"]["data"]["customer_id"] == customer["id"]
                assert sections["analytics"]["status"] == "unavailable"

                erased = await client.post(
                    url + "/erasure", headers={**admin, "X-Purpose": f"gdpr {unique()}"}
                )
                assert erased.status_code == 200
                state: dict[str, Any] = {}

                async def peers_erased() -> bool:
                    response = await client.get(url + "/erasure", headers=admin)
                    state.update({s["service"]: s for s in response.json()["services"]})
                    return all(
                        state[name]["erased"] for name in ("profiles", "interactions", "complaints")
                    )

                await eventually(peers_erased, timeout=60, interval=0.5)
                assert state["analytics"] == {
                    **state["analytics"],
                    "status": "unavailable",
                    "erased": False,
                }
                final = await client.get(url + "/erasure", headers=auth(token("analyst")))
                assert final.status_code == 200 and final.json()["complete"] is False
            finally:
                settings.interactions_url = saved["interactions"]
                settings.complaints_url = saved["complaints"]
                settings.analytics_url = saved["analytics"]
