"""Point 8 under load: concurrent writers cannot both win."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from services.profiles import repository as repo
from tests.profiles.factories import create_customer, customer_payload


async def test_concurrent_creates_of_one_email_give_one_customer(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    payload = customer_payload()
    responses = await asyncio.gather(
        *(
            client.post("/customers", json={**payload, "external_ref": None}, headers=admin)
            for _ in range(4)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409]
    winner = next(r for r in responses if r.status_code == 201).json()
    assert all(
        r.json()["existing_customer_id"] == winner["id"] for r in responses if r.status_code == 409
    )


async def test_concurrent_updates_with_one_etag_let_exactly_one_win(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"region": f"r{i}"}, headers={**admin, "If-Match": '"1"'})
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]
    winner = next(r for r in responses if r.status_code == 200).json()
    after = (await client.get(url, headers=admin)).json()
    assert after["region"] == winner["region"] and after["version"] == 2


async def test_concurrent_updates_with_any_etag_all_apply_one_after_another(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    """`If-Match: *` updates racing for one row: the unlocked read goes stale for all but
    one, and each of those runs again with the row locked; none is lost or applied twice."""
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    notes = [f"call {i}" for i in range(8)]
    responses = await asyncio.gather(
        *(client.patch(url, json={"notes": n}, headers={**admin, "If-Match": "*"}) for n in notes)
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 10))
    assert sorted(r.headers["ETag"] for r in responses) == sorted(f'"{v}"' for v in range(2, 10))
    after = (await client.get(url, headers=admin)).json()
    last = max(responses, key=lambda r: r.json()["version"]).json()
    assert after["version"] == 9 and after["notes"] == last["notes"]
    history = (await client.get(f"{url}/history?entity=customer", headers=admin)).json()
    updates = [h for h in history["items"] if h["action"] == "updated"]
    assert sorted(h["changes"]["notes"]["new"] for h in updates) == sorted(notes)
    async with session_of() as session:
        events = await session.scalar(
            sa.text(
                "SELECT count(*) FROM outbox WHERE subject = :id "
                "AND type = 'kehu.customer.updated.v1'"
            ),
            {"id": customer["id"]},
        )
    assert events == 8


async def test_a_write_for_a_version_the_row_no_longer_has_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    moved = await client.patch(url, json={"region": "moved"}, headers={**admin, "If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["version"] == 2
    event_id = uuid.uuid4()
    row = {
        "event_id": str(event_id),
        "type": "kehu.customer.updated.v1",
        "source": "/kehu/profiles",
        "subject": customer["id"],
        "partition_key": customer["id"],
        "topic": "kehu.customers",
        "time": datetime.now(UTC).isoformat(),
        "data": {},
    }
    async with session_of() as session:
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        version = await repo.update_customer_row(
            driver,
            uuid.UUID(customer["id"]),
            datetime.now(UTC),
            {"region": "stale"},
            "tests",
            "sealed changes",
            json.dumps([row]),
            "[]",
            expected_version=1,
        )
        assert version is None
        written = await session.scalar(
            sa.text(
                "SELECT (SELECT count(*) FROM outbox WHERE event_id = :e) "
                "+ (SELECT count(*) FROM customer_history WHERE actor = 'tests' "
                "AND customer_id = :c)"
            ),
            {"e": event_id, "c": uuid.UUID(customer["id"])},
        )
    assert written == 0
    after = (await client.get(url, headers=admin)).json()
    assert after["region"] == "moved" and after["version"] == 2
