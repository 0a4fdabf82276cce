"""Point 1 and 8: customers CRUD, validation, ETag / If-Match and Idempotency-Key."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from shared import crypto
from tests.conftest import auth
from tests.profiles.factories import create_customer, customer_payload, unique

PROBLEM = "application/problem+json"


async def test_create_assigns_number_and_normalises_contact_details(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    payload = customer_payload(phone="139 1234 5678", email=f"Wang.Fang.{unique()}@Example.COM")
    response = await client.post("/customers", json=payload, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"C-\d{6,}", body["customer_number"])
    assert body["email"] == payload["email"].lower()
    assert body["phone"] == "+8613912345678"
    assert body["tags"] == ["vip", "wholesale"]
    assert body["status"] == "active" and body["version"] == 1
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/customers/{body['id']}"
    got = await client.get(response.headers["location"], headers=admin)
    assert got.status_code == 200 and got.json()["customer_number"] == body["customer_number"]
    assert got.headers["etag"] == '"1"'


async def test_customer_numbers_are_unique_and_increasing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    numbers = [(await create_customer(client, admin))["customer_number"] for _ in range(3)]
    values = [int(n.removeprefix("C-")) for n in numbers]
    assert len(set(numbers)) == 3 and values == sorted(values)


async def test_invalid_email_and_phone_are_422_naming_the_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    payload = customer_payload(email="not-an-email", phone="12345")
    response = await client.post("/customers", json=payload, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert {e["field"] for e in response.json()["errors"]} == {"body.email", "body.phone"}


async def test_organisation_with_minimal_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/customers",
        json={"kind": "organisation", "display_name": f"Lianhua {unique()}"},
        headers=admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "organisation" and body["email"] is None and body["tags"] == []
    assert body["insights"] == {"tier": None, "lifecycle_stage": None, "churn_risk": None}


async def test_patch_with_current_etag_changes_only_sent_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    response = await client.patch(
        f"/customers/{customer['id']}",
        json={"owner_id": "u-42", "notes": None, "email": "NEW." + customer["email"]},
        headers={**admin, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["owner_id"] == "u-42" and body["notes"] is None
    assert body["email"] == "new." + customer["email"]
    assert body["industry"] == customer["industry"] and body["version"] == 2
    assert response.headers["etag"] == '"2"'


async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    first = await client.patch(url, json={"region": "north"}, headers={**admin, "If-Match": '"1"'})
    assert first.status_code == 200
    stale = await client.patch(url, json={"region": "south"}, headers={**admin, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    assert stale.json()["current_etag"] == '"2"'
    after = (await client.get(url, headers=admin)).json()
    assert after["region"] == "north" and after["version"] == 2
    history = (await client.get(url + "/history", headers=admin)).json()["items"]
    assert [h["action"] for h in history] == ["updated", "created"]


async def test_patch_null_empties_a_collection(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    filled = await client.patch(
        url,
        json={"tags": ["vip"], "custom_attributes": {"crm_id": 7}},
        headers={**admin, "If-Match": '"1"'},
    )
    assert filled.status_code == 200, filled.text
    cleared = await client.patch(
        url,
        json={"custom_attributes": None, "tags": None, "addresses": None, "important_dates": None},
        headers={**admin, "If-Match": "*"},
    )
    assert cleared.status_code == 200, cleared.text
    body = (await client.get(url, headers=admin)).json()
    assert (body["custom_attributes"], body["tags"]) == ({}, [])
    assert (body["addresses"], body["important_dates"]) == ([], [])


async def test_patch_without_if_match_is_428(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    response = await client.patch(
        f"/customers/{customer['id']}", json={"region": "west"}, headers=admin
    )
    assert response.status_code == 428
    assert (await client.get(f"/customers/{customer['id']}", headers=admin)).json()[
        "region"
    ] == "east"


async def test_patch_rejects_null_name_and_unknown_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    response = await client.patch(
        f"/customers/{customer['id']}",
        json={"display_name": None, "colour": "red"},
        headers={**admin, "If-Match": '"1"'},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "body.display_name",
        "body.colour",
    }


async def test_delete_archives_and_patch_restores(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    archived = await client.delete(url, headers=admin)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived" and archived.json()["archived_at"]
    again = await client.delete(url, headers=admin)
    assert again.json()["version"] == archived.json()["version"]
    restored = await client.patch(
        url, json={"status": "active"}, headers={**admin, "If-Match": archived.headers["etag"]}
    )
    assert restored.status_code == 200
    assert restored.json()["status"] == "active" and restored.json()["archived_at"] is None


async def test_unknown_customer_is_404_problem(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/customers/6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e", headers=admin)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_reads_of_a_customer_found_or_not_give_their_connection_back(
    client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str]
) -> None:
    """A read takes a pooled connection of its own (no session) and gives it back, found or
    not: many more reads than the pool has connections reuse them (a connection not given
    back is closed when the context goes, and every read would then open a new one)."""
    customer = await create_customer(client, admin)
    settings = app.state.settings
    connections = settings.db_pool_size + settings.db_pool_overflow
    missing = "/customers/6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"
    opened: list[object] = []
    engine = app.state.engine.sync_engine

    def count(connection: object, record: object) -> None:
        opened.append(connection)

    sa.event.listen(engine, "connect", count)
    try:
        for _ in range(connections + 2):
            found = await client.get(f"/customers/{customer['id']}", headers=admin)
            assert found.status_code == 200 and found.json()["id"] == customer["id"]
            assert (await client.get(missing, headers=admin)).status_code == 404
    finally:
        sa.event.remove(engine, "connect", count)
    assert len(opened) < connections


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    payload = customer_payload()
    headers = {**admin, "Idempotency-Key": f"key-{unique()}"}
    first = await client.post("/customers", json=payload, headers=headers)
    second = await client.post("/customers", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    found = await client.get("/customers", params={"q": payload["email"]}, headers=admin)
    assert len(found.json()["items"]) == 1
    other = await client.post("/customers", json=customer_payload(), headers=headers)
    assert other.status_code == 422


async def test_a_reply_sealed_with_a_retired_key_is_a_409_problem_not_a_500(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    key = f"key-{unique()}"
    headers = {**admin, "Idempotency-Key": key}
    payload = customer_payload()
    first = await client.post("/customers", json=payload, headers=headers)
    assert first.status_code == 201
    # The stored reply is sealed, never plain text.
    async with session_of() as session:
        stored = await session.scalar(
            sa.text("SELECT body FROM idempotency_keys WHERE key = :key"), {"key": key}
        )
    assert payload["display_name"] not in json.dumps(stored)
    assert first.json()["id"] in stored["ids"]
    # Sealed under a key since retired from the keyring: it cannot be opened any more.
    retired = crypto.Keyring(
        keys={"retired": secrets.token_bytes(32)}, active="retired", index_key=b"x" * 32
    )
    sealed = retired.seal(json.dumps(first.json()), "profiles.idempotency_keys.body")
    async with session_of() as session:
        await session.execute(
            sa.text(
                "UPDATE idempotency_keys SET body = jsonb_set(body, '{sealed}', to_jsonb("
                "CAST(:sealed AS text))) WHERE key = :key"
            ),
            {"sealed": sealed, "key": key},
        )
    retry = await client.post("/customers", json=payload, headers=headers)
    assert retry.status_code == 409, retry.text
    assert retry.headers["content-type"].startswith(PROBLEM)
    assert "retired key" in retry.json()["detail"]
    # A damaged value is the same answer.
    async with session_of() as session:
        await session.execute(
            sa.text(
                "UPDATE idempotency_keys SET body = jsonb_set(body, '{sealed}', '\"garbage\"') "
                "WHERE key = :key"
            ),
            {"key": key},
        )
    damaged = await client.post("/customers", json=payload, headers=headers)
    assert damaged.status_code == 409 and damaged.headers["content-type"].startswith(PROBLEM)


async def test_pii_is_masked_without_pii_scope(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    customer = await create_customer(client, admin)
    response = await client.get(f"/customers/{customer['id']}", headers=auth(token("analyst")))
    assert response.status_code == 200
    body = response.json()
    assert body["email"] != customer["email"] and body["email"].endswith("@example.com")
    assert "*" in body["phone"] and body["phone"][-4:] == customer["phone"][-4:]
    assert body["addresses"] == [] and body["notes"] is None
    denied = await client.post(
        "/customers", json=customer_payload(), headers=auth(token("analyst"))
    )
    assert denied.status_code == 403
