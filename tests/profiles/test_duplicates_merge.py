"""Point 4: duplicate check on create, duplicate candidates, merge with preview."""

from __future__ import annotations

import os
from typing import Any

import httpx

from shared.events.envelope import from_kafka
from tests.helpers import eventually, read_topic
from tests.profiles.factories import create_customer, customer_payload, mobile, unique


async def test_same_email_is_409_naming_the_existing_customer(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin)
    again = customer_payload(email=first["email"].upper(), display_name="Someone else")
    response = await client.post("/customers", json=again, headers=admin)
    assert response.status_code == 409
    body = response.json()
    assert body["existing_customer_id"] == first["id"]
    assert body["existing_customer_number"] == first["customer_number"]
    assert body["matched_on"] == ["email"]
    insisted = await client.post(
        "/customers", params={"allow_duplicate": "true"}, json=again, headers=admin
    )
    assert insisted.status_code == 201


async def test_same_phone_in_other_notation_is_a_duplicate(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    phone = mobile()
    first = await create_customer(client, admin, phone=phone)
    response = await client.post(
        "/customers",
        json=customer_payload(phone=f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"),
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["existing_customer_id"] == first["id"]
    assert response.json()["matched_on"] == ["phone"]


async def test_same_name_in_same_company_is_a_duplicate(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    company = f"Lianhua {unique()}"
    first = await create_customer(client, admin, display_name="Zhang San", company_name=company)
    same = customer_payload(display_name="zhang san", company_name=company.upper())
    response = await client.post("/customers", json=same, headers=admin)
    assert response.status_code == 409
    assert response.json()["matched_on"] == ["name_and_company"]
    assert response.json()["existing_customer_id"] == first["id"]
    other_company = customer_payload(display_name="Zhang San", company_name=f"Other {unique()}")
    assert (await client.post("/customers", json=other_company, headers=admin)).status_code == 201


async def test_duplicate_candidates_lists_matches(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin)
    response = await client.post(
        "/customers",
        params={"allow_duplicate": "true"},
        json=customer_payload(email=first["email"], phone=first["phone"]),
        headers=admin,
    )
    dup = response.json()
    candidates = await client.get(f"/customers/{first['id']}/duplicates", headers=admin)
    assert candidates.status_code == 200
    assert [(c["customer_id"], c["matched_on"]) for c in candidates.json()] == [
        (dup["id"], ["email", "phone"])
    ]


async def pair(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[dict, dict]:
    survivor = await create_customer(client, admin, kind="organisation", tags=["a"], notes=None)
    duplicate = await create_customer(
        client,
        admin,
        kind="organisation",
        tags=["b"],
        notes="from the duplicate",
        region="south",
    )
    return survivor, duplicate


async def test_merge_dry_run_previews_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate = await pair(client, admin)
    response = await client.post(
        f"/customers/{survivor['id']}/merge",
        json={
            "duplicate_id": duplicate["id"],
            "survivorship": {"email": "duplicate"},
            "dry_run": True,
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["dry_run"] is True
    assert preview["survivor"]["email"] == duplicate["email"]
    assert preview["survivor"]["notes"] == "from the duplicate"  # survivor's was empty
    assert preview["survivor"]["region"] == survivor["region"]
    assert preview["survivor"]["tags"] == ["a", "b"]
    assert set(preview["changed_fields"]) == {"email", "notes", "tags"}
    for original in (survivor, duplicate):
        now = (await client.get(f"/customers/{original['id']}", headers=admin)).json()
        assert now["version"] == 1 and now["email"] == original["email"]
        assert now["status"] == "active"


async def test_merge_repoints_records_and_publishes_merged_on_kafka(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate = await pair(client, admin)
    contact = await client.post(
        f"/customers/{duplicate['id']}/contacts",
        json={"name": "Wang Fang", "role": "buyer"},
        headers=admin,
    )
    need = await client.post(
        f"/customers/{duplicate['id']}/needs",
        json={"category": "product", "title": "Bulk pricing"},
        headers=admin,
    )
    assert contact.status_code == need.status_code == 201
    response = await client.post(
        f"/customers/{survivor['id']}/merge",
        json={"duplicate_id": duplicate["id"], "survivorship": {"phone": "duplicate"}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["moved"] == {"contacts": 1, "needs": 1, "consent_records": 0}
    assert result["survivor"]["phone"] == duplicate["phone"]
    contacts = (await client.get(f"/customers/{survivor['id']}/contacts", headers=admin)).json()
    assert [c["id"] for c in contacts] == [contact.json()["id"]]
    needs = (await client.get(f"/customers/{survivor['id']}/needs", headers=admin)).json()
    assert [n["id"] for n in needs] == [need.json()["id"]]
    gone = (await client.get(f"/customers/{duplicate['id']}", headers=admin)).json()
    assert gone["status"] == "merged" and gone["merged_into_id"] == survivor["id"]
    listed = await client.get(
        "/customers", params={"q": duplicate["customer_number"]}, headers=admin
    )
    assert listed.json()["items"] == []
    again = await client.post(
        f"/customers/{survivor['id']}/merge", json={"duplicate_id": duplicate["id"]}, headers=admin
    )
    assert again.status_code == 422

    seen: list[dict[str, Any]] = []

    async def merged_event_arrived() -> bool:
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        for record in await read_topic(bootstrap, "kehu.customers", at_least=1):
            event = from_kafka(record.value, record.headers)
            if (
                event.type == "kehu.customer.merged.v1"
                and event.data["merged_customer_id"] == duplicate["id"]
            ):
                assert record.key == survivor["id"].encode()
                seen.append(event.data)
        return bool(seen)

    await eventually(merged_event_arrived, timeout=30, interval=0.5)
    assert seen[0]["customer_id"] == survivor["id"]


async def test_merge_rejects_unknown_fields_and_self_merge(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate = await pair(client, admin)
    url = f"/customers/{survivor['id']}/merge"
    unknown = await client.post(
        url,
        json={"duplicate_id": duplicate["id"], "survivorship": {"colour": "duplicate"}},
        headers=admin,
    )
    assert unknown.status_code == 422 and "colour" in unknown.json()["detail"]
    itself = await client.post(url, json={"duplicate_id": survivor["id"]}, headers=admin)
    assert itself.status_code == 422


async def test_patch_to_another_customers_email_is_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin)
    second = await create_customer(client, admin)
    url = f"/customers/{second['id']}"
    response = await client.patch(
        url, json={"email": first["email"]}, headers={**admin, "If-Match": '"1"'}
    )
    assert response.status_code == 409
    assert response.json()["existing_customer_id"] == first["id"]
    assert (await client.get(url, headers=admin)).json()["email"] == second["email"]
    insisted = await client.patch(
        url,
        params={"allow_duplicate": "true"},
        json={"email": first["email"]},
        headers={**admin, "If-Match": '"1"'},
    )
    assert insisted.status_code == 200 and insisted.json()["email"] == first["email"]


async def test_duplicate_pairs_across_the_archive(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin)
    second = (
        await client.post(
            "/customers",
            params={"allow_duplicate": "true"},
            json=customer_payload(phone=first["phone"]),
            headers=admin,
        )
    ).json()
    pairs: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/duplicates", params=params, headers=admin)).json()
        pairs.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ours = [
        p
        for p in pairs
        if {p["customer"]["customer_id"], p["duplicate"]["customer_id"]}
        == {first["id"], second["id"]}
    ]
    assert len(ours) == 1 and ours[0]["customer"]["matched_on"] == ["phone"]
    keys = [(p["customer"]["customer_id"], p["duplicate"]["customer_id"]) for p in pairs]
    assert len(keys) == len(set(keys))
