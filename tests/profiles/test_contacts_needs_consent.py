"""Points 2, 3 and 9: contacts, needs, consent and the change history."""

from __future__ import annotations

import httpx

from tests.profiles.factories import create_customer


async def test_contacts_of_an_organisation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    org = await create_customer(client, admin, kind="organisation")
    url = f"/customers/{org['id']}/contacts"
    created = await client.post(
        url,
        json={
            "name": "Wang Fang",
            "role": "purchasing",
            "email": "W.Fang@Example.com",
            "phone": "13912345678",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["email"] == "w.fang@example.com" and contact["phone"] == "+8613912345678"
    one = f"{url}/{contact['id']}"
    stale = await client.patch(one, json={"role": "ceo"}, headers={**admin, "If-Match": '"7"'})
    assert stale.status_code == 412
    changed = await client.patch(one, json={"role": "ceo"}, headers={**admin, "If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["role"] == "ceo"
    assert [c["role"] for c in (await client.get(url, headers=admin)).json()] == ["ceo"]
    assert (await client.delete(one, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).json() == []
    history = (
        await client.get(
            f"/customers/{org['id']}/history", params={"entity": "contact"}, headers=admin
        )
    ).json()["items"]
    assert [h["action"] for h in history] == ["deleted", "updated", "created"]
    assert history[1]["changes"] == {"role": {"old": "purchasing", "new": "ceo"}}


async def test_persons_have_no_contacts(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    person = await create_customer(client, admin)
    response = await client.post(
        f"/customers/{person['id']}/contacts", json={"name": "X"}, headers=admin
    )
    assert response.status_code == 422


async def test_need_status_moves_and_invalid_transition_is_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}/needs"
    need = (
        await client.post(
            url,
            json={"category": "service", "title": "Weekly visit", "due_date": "2027-01-31"},
            headers=admin,
        )
    ).json()
    assert need["status"] == "open" and need["priority"] == "medium"
    one = f"{url}/{need['id']}"
    met = await client.patch(one, json={"status": "met"}, headers={**admin, "If-Match": '"1"'})
    assert met.status_code == 200 and met.json()["status"] == "met"
    bad = await client.patch(
        one, json={"status": "in_progress"}, headers={**admin, "If-Match": '"2"'}
    )
    assert bad.status_code == 409 and bad.json()["allowed"] == ["open"]
    reopened = await client.patch(
        one, json={"status": "open"}, headers={**admin, "If-Match": '"2"'}
    )
    assert reopened.status_code == 200
    assert [
        n["id"] for n in (await client.get(url, params={"status": "open"}, headers=admin)).json()
    ] == [need["id"]]
    assert (await client.get(url, params={"status": "met"}, headers=admin)).json() == []
    invalid = await client.post(
        url, json={"category": "x", "title": "y", "priority": "urgent"}, headers=admin
    )
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "body.priority"


async def test_consent_keeps_its_history(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}/consents"
    for granted, source in ((True, "web_form"), (False, "phone_call")):
        response = await client.post(
            url,
            json={"purpose": "marketing_sms", "granted": granted, "source": source},
            headers=admin,
        )
        assert response.status_code == 201
    await client.post(
        url,
        json={"purpose": "data_processing", "granted": True, "source": "contract"},
        headers=admin,
    )
    state = (await client.get(url, headers=admin)).json()
    current = {c["purpose"]: (c["granted"], c["source"]) for c in state["current"]}
    assert current == {
        "marketing_sms": (False, "phone_call"),
        "data_processing": (True, "contract"),
    }
    assert [(h["purpose"], h["granted"]) for h in state["history"]] == [
        ("data_processing", True),
        ("marketing_sms", False),
        ("marketing_sms", True),
    ]
    assert all(h["recorded_by"] == "admin-tester" for h in state["history"])
    bad = await client.post(
        url, json={"purpose": "telepathy", "granted": True, "source": "x"}, headers=admin
    )
    assert bad.status_code == 422


async def test_history_names_actor_fields_old_and_new(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}"
    await client.patch(
        url, json={"owner_id": "u-2", "region": "east"}, headers={**admin, "If-Match": '"1"'}
    )
    await client.patch(url, json={"tags": ["new"]}, headers={**admin, "If-Match": '"2"'})
    page = (await client.get(url + "/history", params={"limit": 2}, headers=admin)).json()
    latest, middle = page["items"]
    assert latest["changes"] == {"tags": {"old": ["vip", "wholesale"], "new": ["new"]}}
    assert middle["changes"] == {"owner_id": {"old": customer["owner_id"], "new": "u-2"}}
    assert middle["actor"] == "admin-tester" and middle["entity"] == "customer"
    rest = (
        await client.get(url + "/history", params={"cursor": page["next_cursor"]}, headers=admin)
    ).json()
    assert [h["action"] for h in rest["items"]] == ["created"] and rest["next_cursor"] is None
    assert rest["items"][0]["changes"]["email"] == {"old": None, "new": customer["email"]}


async def test_required_need_fields_cannot_be_nulled(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    url = f"/customers/{customer['id']}/needs"
    need = (await client.post(url, json={"category": "x", "title": "y"}, headers=admin)).json()
    response = await client.patch(
        f"{url}/{need['id']}",
        json={"title": None, "status": None},
        headers={**admin, "If-Match": '"1"'},
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"body.title", "body.status"}
