"""Point 10: GDPR export and erasure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import auth
from tests.profiles.factories import customer_payload, mobile, unique

TEXT_TYPES = ("text", "character varying", "jsonb", "json", "ARRAY")


async def occurrences(session_of: Callable[[], Any], needles: list[str]) -> list[str]:
    """`table.column` of every text, JSON or array column in which any needle appears."""
    found = []
    async with session_of() as session:
        columns = await session.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type = ANY(:types)"
            ),
            {"types": list(TEXT_TYPES)},
        )
        for table, column in columns.all():
            for needle in needles:
                hits = await session.scalar(
                    sa.text(
                        f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :pattern'
                    ),
                    {"pattern": f"%{needle}%"},
                )
                if hits:
                    found.append(f"{table}.{column}: {needle}")
    return found


async def rich_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    """An organisation with PII everywhere: history, contacts, needs, a merged duplicate and a
    stored idempotent response."""
    payload = customer_payload(kind="organisation")
    created = await client.post(
        "/customers", json=payload, headers={**admin, "Idempotency-Key": unique()}
    )
    assert created.status_code == 201
    customer = created.json()
    url = f"/customers/{customer['id']}"
    new_email = f"second.{unique()}@example.org"
    await client.patch(url, json={"email": new_email}, headers={**admin, "If-Match": '"1"'})
    contact_email, contact_phone = f"contact.{unique()}@example.net", mobile()
    contact = await client.post(
        url + "/contacts",
        json={"name": f"Contact {unique()}", "email": contact_email, "phone": contact_phone},
        headers={**admin, "Idempotency-Key": unique()},
    )
    assert contact.status_code == 201
    need_title = f"Needs discretion {unique()}"
    await client.post(
        url + "/needs", json={"category": "service", "title": need_title}, headers=admin
    )
    await client.post(
        url + "/consents",
        json={"purpose": "marketing_email", "granted": True, "source": "web_form"},
        headers=admin,
    )
    dup = await client.post(
        "/customers",
        params={"allow_duplicate": "true"},
        json=customer_payload(kind="organisation"),
        headers=admin,
    )
    merged = await client.post(
        url + "/merge",
        json={"duplicate_id": dup.json()["id"]},
        headers={**admin, "Idempotency-Key": unique()},
    )
    assert merged.status_code == 200
    return {
        "customer": customer,
        "duplicate": dup.json(),
        "needles": [
            customer["email"],
            new_email,
            customer["phone"],
            customer["display_name"],
            payload["notes"],
            payload["addresses"][0]["line1"],
            contact_email,
            contact_phone,
            contact.json()["name"],
            need_title,
            dup.json()["email"],
            dup.json()["phone"],
            dup.json()["display_name"],
        ],
    }


async def test_export_holds_everything_about_the_customer(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    data = await rich_customer(client, admin)
    customer = data["customer"]
    response = await client.get(f"/customers/{customer['id']}/export", headers=admin)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["service"] == "profiles" and document["status"] == "ok"
    assert document["customer_id"] == customer["id"] and document["erased_at"] is None
    export = document["data"]
    assert export["customer"]["id"] == customer["id"]
    assert [m["id"] for m in export["merged_records"]] == [data["duplicate"]["id"]]
    assert len(export["contacts"]) == 1 and len(export["needs"]) == 1
    assert export["consent"][0]["purpose"] == "marketing_email"
    actions = {h["action"] for h in export["history"]}
    assert {"created", "updated", "merged", "merged_into"} <= actions
    denied = await client.get(f"/customers/{customer['id']}/export", headers=auth(token("analyst")))
    assert denied.status_code == 403


async def test_export_of_an_unknown_customer_says_profiles_holds_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(f"/customers/{uuid.uuid4()}/export", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "holds_nothing" and response.json()["data"] == {}


async def test_erased_customer_pii_is_nowhere_in_the_database(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    data = await rich_customer(client, admin)
    customer = data["customer"]
    needles = data["needles"]
    assert await occurrences(session_of, needles)  # the check can see PII before erasure
    response = await client.post(f"/customers/{customer['id']}/erasure", headers=admin)
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["erased_at"] and erased["status"] == "archived"
    assert erased["email"] is None and erased["phone"] is None
    assert erased["display_name"] == f"Erased customer {customer['customer_number']}"
    assert erased["industry"] == customer["industry"] and erased["tags"] == customer["tags"]
    assert await occurrences(session_of, needles) == []
    async with session_of() as session:
        types = await session.execute(
            sa.text(
                "SELECT type, subject FROM outbox WHERE type = 'kehu.customer.erased.v1' "
                "AND subject = ANY(:ids)"
            ),
            {"ids": [customer["id"], data["duplicate"]["id"]]},
        )
        assert {s for _, s in types.all()} == {customer["id"], data["duplicate"]["id"]}
    consent = (await client.get(f"/customers/{customer['id']}/consents", headers=admin)).json()
    assert consent["current"][0]["granted"] is True  # non-identifying facts stay
    patch = await client.patch(
        f"/customers/{customer['id']}",
        json={"email": "back@example.com"},
        headers={**admin, "If-Match": f'"{erased["version"]}"'},
    )
    assert patch.status_code == 409


async def test_erasing_twice_changes_nothing_more(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    created = await client.post("/customers", json=customer_payload(), headers=admin)
    url = f"/customers/{created.json()['id']}/erasure"
    first = await client.post(url, headers=admin)
    second = await client.post(url, headers=admin)
    assert first.status_code == second.status_code == 200
    assert second.json()["version"] == first.json()["version"]
    async with session_of() as session:
        erased_events = await session.scalar(
            sa.text(
                "SELECT count(*) FROM outbox WHERE type = 'kehu.customer.erased.v1' "
                "AND subject = :id"
            ),
            {"id": created.json()["id"]},
        )
    assert erased_events == 1
