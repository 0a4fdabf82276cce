"""Point 11: every change publishes its documented contract, without PII."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from services.profiles.models import outbox
from shared.events.registry import REGISTRY
from tests.profiles.factories import create_customer


async def events_of(session_of: Callable[[], Any], customer_id: str) -> list[tuple[str, dict]]:
    async with session_of() as session:
        rows = await session.execute(
            sa.select(outbox.c.type, outbox.c.data)
            .where(outbox.c.partition_key == customer_id)
            .order_by(outbox.c.id)
        )
        return [(t, d) for t, d in rows.all()]


async def test_customer_lifecycle_publishes_created_updated_archived_without_pii(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    await client.patch(
        url,
        json={"owner_id": "u-9", "phone": "+86 139 0000 1111", "tags": ["gold"]},
        headers={**admin, "If-Match": '"1"'},
    )
    await client.delete(url, headers=admin)
    events = await events_of(session_of, customer["id"])
    assert [t for t, _ in events] == [
        "kehu.customer.created.v1",
        "kehu.customer.updated.v1",
        "kehu.customer.archived.v1",
    ]
    created, updated, _ = (d for _, d in events)
    assert created["dimensions"]["customer_number"] == customer["customer_number"]
    assert created["dimensions"]["tags"] == ["vip", "wholesale"]
    assert updated["changed_fields"] == ["owner_id", "phone", "tags"]
    assert updated["dimensions"]["owner_id"] == "u-9"
    for event_type, data in events:
        REGISTRY.parse(event_type, data)  # each matches its contract
        text = json.dumps(data)
        for pii in (
            customer["email"],
            customer["phone"],
            "+8613900001111",
            customer["display_name"],
        ):
            assert pii not in text


async def test_need_and_consent_events(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    need = await client.post(
        url + "/needs",
        json={"category": "delivery", "title": "Cold chain", "priority": "high"},
        headers=admin,
    )
    assert need.status_code == 201
    await client.patch(
        f"{url}/needs/{need.json()['id']}",
        json={"status": "in_progress"},
        headers={**admin, "If-Match": need.headers["etag"]},
    )
    grant = {"purpose": "marketing_email", "granted": True, "source": "web_form"}
    await client.post(url + "/consents", json=grant, headers=admin)
    await client.post(url + "/consents", json=grant, headers=admin)  # no change: no event
    await client.post(url + "/consents", json={**grant, "granted": False}, headers=admin)
    events = await events_of(session_of, customer["id"])
    types = [t for t, _ in events]
    assert types == [
        "kehu.customer.created.v1",
        "kehu.need.recorded.v1",
        "kehu.need.updated.v1",
        "kehu.consent.changed.v1",
        "kehu.consent.changed.v1",
    ]
    assert events[2][1]["changed_fields"] == ["status"]
    assert events[2][1]["status"] == "in_progress" and events[2][1]["priority"] == "high"
    assert [d["granted"] for _, d in events[3:]] == [True, False]
    assert "Cold chain" not in json.dumps([d for _, d in events])
