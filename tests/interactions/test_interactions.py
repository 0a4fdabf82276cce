"""Interactions: log, read, list with filters, correct with ETag."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.interactions.factories import events, interaction_body, iso, now


async def test_logging_an_interaction_stores_it_and_publishes_interaction_logged(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    complaint = str(uuid.uuid4())
    body = interaction_body(channel="visit", complaint_id=complaint)
    response = await client.post("/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/interactions/{created['id']}"
    fetched = await client.get(f"/interactions/{created['id']}", headers=admin)
    assert fetched.json() == created
    assert (created["channel"], created["complaint_id"]) == ("visit", complaint)
    [event] = await events(app, "interaction.logged", interaction_id=created["id"])
    assert (event["channel"], event["outcome"], event["duration_seconds"]) == (
        "visit",
        "follow_up_needed",
        300,
    )
    assert "summary" not in event and "contact_person" not in event


async def test_invalid_channel_and_naive_time_are_422_naming_the_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = interaction_body(channel="pigeon", occurred_at="2026-11-20T09:30:00")
    response = await client.post("/interactions", json=body, headers=admin)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.channel", "body.occurred_at"}


async def test_agent_without_the_scope_is_403(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    analyst = {"Authorization": f"Bearer {token('analyst')}"}
    response = await client.post("/interactions", json=interaction_body(), headers=analyst)
    assert response.status_code == 403
    assert response.json()["required_scope"] == "interactions:write"


async def test_personal_text_is_redacted_without_pii_read(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    created = (await client.post("/interactions", json=interaction_body(), headers=admin)).json()
    analyst = {"Authorization": f"Bearer {token('analyst')}"}
    seen = (await client.get(f"/interactions/{created['id']}", headers=analyst)).json()
    assert (seen["contact_person"], seen["summary"]) == ("[redacted]", "[redacted]")
    assert seen["channel"] == created["channel"]


async def test_list_filters_by_customer_channel_and_time_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    base = now() - timedelta(days=3)
    for hours, channel in [(1, "phone"), (2, "email"), (3, "phone"), (4, "phone")]:
        body = interaction_body(
            customer, channel=channel, occurred_at=iso(base + timedelta(hours=hours))
        )
        assert (await client.post("/interactions", json=body, headers=admin)).status_code == 201
    url = f"/interactions?customer_id={customer}&channel=phone&limit=2"
    first = (await client.get(url, headers=admin)).json()
    second = (await client.get(f"{url}&cursor={first['next_cursor']}", headers=admin)).json()
    times = [i["occurred_at"] for i in first["items"] + second["items"]]
    assert len(times) == 3 and times == sorted(times, reverse=True)
    assert second["next_cursor"] is None
    windowed = await client.get(
        "/interactions",
        params={
            "customer_id": str(customer),
            "from": iso(base + timedelta(hours=2)),
            "to": iso(base + timedelta(hours=4)),
        },
        headers=admin,
    )
    assert [i["channel"] for i in windowed.json()["items"]] == ["phone", "email"]


@pytest.mark.parametrize(
    ("path", "name"),
    [("/interactions", "from"), ("/interactions", "to"), ("/followups", "due_from")],
)
async def test_a_time_filter_with_no_utc_equivalent_is_422_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], path: str, name: str
) -> None:
    response = await client.get(path, params={name: "0001-01-01T19:59:56+22:02"}, headers=admin)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"query.{name}"]


async def test_bad_cursor_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/interactions?cursor=bm90LWEtY3Vyc29y", headers=admin)
    assert response.status_code == 400


async def test_correction_needs_the_current_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await client.post("/interactions", json=interaction_body(), headers=admin)
    url = f"/interactions/{created.json()['id']}"
    change = {"summary": "Corrected summary", "outcome": "resolved"}
    assert (await client.patch(url, json=change, headers=admin)).status_code == 428
    ok = await client.patch(url, json=change, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["summary"], ok.json()["outcome"], ok.headers["etag"]) == (
        "Corrected summary",
        "resolved",
        '"2"',
    )
    assert ok.json()["subject"] == "Quarterly review"  # untouched fields stay
    stale = await client.patch(url, json={"summary": "x"}, headers={**admin, "If-Match": '"1"'})
    assert stale.status_code == 412
    cleared = await client.patch(url, json={"channel": None}, headers={**admin, "If-Match": '"2"'})
    assert cleared.status_code == 422


async def test_idempotency_key_replays_the_first_response(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Idempotency-Key": uuid.uuid4().hex}
    body = interaction_body()
    first = await client.post("/interactions", json=body, headers=headers)
    retry = await client.post("/interactions", json=body, headers=headers)
    assert retry.json()["id"] == first.json()["id"]
    logged = await events(app, "interaction.logged", customer_id=body["customer_id"])
    assert len(logged) == 1
