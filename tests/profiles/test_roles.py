"""Erasure and merge are privileged: `customers:erase` / `customers:merge`, held by managers and
admins, not by agents (who may read PII and write customers)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import auth
from tests.profiles.factories import create_customer, customer_payload

PROBLEM = "application/problem+json"


async def test_an_agent_may_not_erase_and_a_manager_may(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}/erasure"
    refused = await client.post(url, headers=auth(token("agent")))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["required_scope"] == "customers:erase"
    assert "customers:erase" in refused.json()["detail"]
    still = await client.get(f"/customers/{customer['id']}", headers=admin)
    assert still.json()["erased_at"] is None
    erased = await client.post(url, headers=auth(token("manager")))
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased_at"] is not None


async def test_an_agent_may_not_merge_and_a_manager_may(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    survivor = await create_customer(client, admin)
    duplicate = await create_customer(client, admin)
    url = f"/customers/{survivor['id']}/merge"
    body = {"duplicate_id": duplicate["id"]}
    refused = await client.post(url, json=body, headers=auth(token("agent")))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["required_scope"] == "customers:merge"
    merged = await client.post(url, json=body, headers=auth(token("manager")))
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged_customer_id"] == duplicate["id"]


async def test_the_openapi_text_names_the_privileged_scopes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "customers:erase" in paths["/customers/{customer_id}/erasure"]["post"]["description"]
    assert "customers:merge" in paths["/customers/{customer_id}/merge"]["post"]["description"]


async def test_an_agent_still_creates_customers(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    created = await client.post("/customers", json=customer_payload(), headers=auth(token("agent")))
    assert created.status_code == 201, created.text
