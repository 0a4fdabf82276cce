"""GDPR across services over real HTTP: peers served by uvicorn on free local ports answer the
shared documents (`GdprDocument`, `ErasureReport`); one lacks the routes (404), one is down.

The peers here are small stand-ins speaking the shared contract, so that these tests pin
profiles' side of it (sections, statuses, `complete`) on their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, Response
from pydantic import ValidationError

from services.profiles.config import Settings
from shared.gdpr import ErasureReport, GdprDocument
from tests.conftest import auth
from tests.profiles.factories import create_customer
from tests.profiles.test_data_protection import closed_port, running

ERASED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def peer_app(name: str, holds: bool) -> FastAPI:
    """A service speaking the shared GDPR contract; it holds records of every customer asked
    about (`holds`) and has erased them, or holds nothing at all. Needs a bearer token."""
    peer = FastAPI()
    peer.state.seen = []

    @peer.get("/customers/{customer_id}/export")
    async def export(customer_id: uuid.UUID, authorization: str = Header("")) -> Any:
        peer.state.seen.append(authorization)
        if not authorization.startswith("Bearer "):
            return Response(status_code=401)
        return GdprDocument(
            service=name,
            customer_id=customer_id,
            status="ok" if holds else "holds_nothing",
            exported_at=datetime.now(UTC),
            data={"notes": [{"text": "hello"}]} if holds else {},
        )

    @peer.get("/customers/{customer_id}/erasure")
    async def erasure(customer_id: uuid.UUID) -> Any:
        return ErasureReport(
            service=name,
            customer_id=customer_id,
            status="erased" if holds else "holds_nothing",
            erased=True,
            erased_at=ERASED_AT if holds else None,
            kept=["anonymous counts"] if holds else [],
        )

    return peer


@asynccontextmanager
async def peers(app: FastAPI, **served: FastAPI | None) -> AsyncIterator[None]:
    """Point profiles at these peers (None: a closed port) and ask only them."""
    settings = app.state.settings
    saved = {name: getattr(settings, f"{name}_url") for name in served} | {
        "gdpr_peers": settings.gdpr_peers
    }
    async with AsyncExitStack() as stack:
        for name, peer in served.items():
            url = closed_port() if peer is None else await stack.enter_async_context(running(peer))
            setattr(settings, f"{name}_url", url)
        settings.gdpr_peers = ",".join(served)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(settings, name if name == "gdpr_peers" else f"{name}_url", value)


async def test_export_sections_say_ok_holds_nothing_error_for_a_404_and_unavailable(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    interactions = peer_app("interactions", holds=True)
    async with peers(
        app,
        interactions=interactions,
        complaints=peer_app("complaints", holds=False),
        analytics=FastAPI(),  # answers, but has no GDPR routes: 404
        subscriptions=None,  # down
    ):
        export = await client.get(url + "/gdpr-export", headers=admin)
        status = await client.get(url + "/erasure", headers=admin)
    assert export.status_code == 200, export.text
    body = export.json()
    sections = {s["service"]: s for s in body["services"]}
    assert list(sections) == [
        "profiles",
        "interactions",
        "complaints",
        "analytics",
        "subscriptions",
    ]
    assert sections["profiles"]["status"] == "ok"
    assert sections["profiles"]["data"]["data"]["customer"]["email"] == customer["email"]
    assert sections["interactions"]["status"] == "ok"
    assert sections["interactions"]["data"]["customer_id"] == customer["id"]
    assert sections["interactions"]["data"]["data"] == {"notes": [{"text": "hello"}]}
    assert sections["complaints"]["status"] == "holds_nothing"
    assert sections["analytics"]["status"] == "error"
    assert sections["analytics"]["http_status"] == 404
    assert sections["subscriptions"]["status"] == "unavailable"
    assert body["complete"] is False
    assert interactions.state.seen[0].startswith("Bearer ")

    assert status.status_code == 200, status.text
    erasure = {s["service"]: s for s in status.json()["services"]}
    assert erasure["profiles"]["status"] == "pending" and erasure["profiles"]["erased"] is False
    assert erasure["interactions"]["status"] == "erased"
    assert erasure["interactions"]["kept"] == ["anonymous counts"]
    assert erasure["interactions"]["erased_at"].startswith("2026-11-23T10:00")
    assert erasure["complaints"]["status"] == "holds_nothing"
    assert erasure["complaints"]["erased"] is True
    # A 404 is a missing route, never "erased".
    assert erasure["analytics"]["status"] == "error" and erasure["analytics"]["erased"] is False
    assert erasure["subscriptions"]["status"] == "unavailable"
    assert status.json()["complete"] is False


async def test_complete_once_every_service_answered_and_erased(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, token: Callable[..., str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    async with peers(
        app,
        interactions=peer_app("interactions", holds=True),
        complaints=peer_app("complaints", holds=False),
    ):
        export = await client.get(url + "/gdpr-export", headers=admin)
        assert export.status_code == 200 and export.json()["complete"] is True
        before = await client.get(url + "/erasure", headers=admin)
        assert before.json()["complete"] is False  # profiles has not erased yet
        erased = await client.post(url + "/erasure", headers=admin)
        assert erased.status_code == 200, erased.text
        after = await client.get(url + "/erasure", headers=auth(token("analyst")))
    assert after.status_code == 200, after.text
    services = {s["service"]: s for s in after.json()["services"]}
    assert services["profiles"]["status"] == "erased" and services["profiles"]["kept"]
    assert after.json()["complete"] is True


def test_the_peers_are_the_other_services_unless_configured() -> None:
    peers = Settings().peers()
    assert list(peers) == [
        "interactions",
        "complaints",
        "analytics",
        "subscriptions",
        "loyalty",
        "outreach",
    ]
    assert peers["subscriptions"] == "http://127.0.0.1:8005"
    assert peers["outreach"] == "http://127.0.0.1:8007"
    chosen = Settings(PROFILES_GDPR_PEERS="analytics, subscriptions").peers()  # type: ignore[call-arg]
    assert list(chosen) == ["analytics", "subscriptions"]
    with pytest.raises(ValidationError, match="unknown GDPR peers"):
        Settings(PROFILES_GDPR_PEERS="analytics,billing")  # type: ignore[call-arg]
