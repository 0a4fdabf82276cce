"""Point 8 under load: concurrent writers cannot both win."""

from __future__ import annotations

import asyncio

import httpx

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
