"""The customer timeline: every kind of record in one chronological, paginated stream."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from tests.interactions.factories import (
    followup_body,
    interaction_body,
    iso,
    now,
    purchase_body,
    survey_body,
)


async def test_timeline_merges_all_records_newest_first_across_pages(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    base = now() - timedelta(days=10)
    at = {n: iso(base + timedelta(days=n)) for n in range(6)}
    posted = [
        ("interaction", "/interactions", interaction_body(customer, occurred_at=at[0])),
        ("purchase", "/purchases", purchase_body(customer, occurred_at=at[1])),
        ("survey", "/surveys", survey_body(customer, submitted_at=at[2])),
        ("followup", "/followups", followup_body(customer, due_at=at[3])),
        ("interaction", "/interactions", interaction_body(customer, occurred_at=at[4])),
        ("purchase", "/purchases", purchase_body(customer, occurred_at=at[5])),
    ]
    expected = []
    for kind, url, body in posted:
        response = await client.post(url, json=body, headers=admin)
        assert response.status_code == 201, response.text
        expected.append((kind, response.json()["id"]))
    refund = await client.post(
        f"/purchases/{expected[1][1]}/refunds",
        json={"amount": "10", "occurred_at": iso(base + timedelta(days=6))},
        headers=admin,
    )
    expected.append(("refund", refund.json()["id"]))
    await client.post("/interactions", json=interaction_body(), headers=admin)  # someone else

    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(4):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"/customers/{customer}/timeline", params=params, headers=admin)
        assert page.status_code == 200, page.text
        for entry in page.json()["items"]:
            assert entry[entry["type"]]["id"] == entry["id"]  # the record is embedded
            seen.append((entry["type"], entry["id"]))
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(expected))


async def test_timeline_filters_by_type(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = uuid.uuid4()
    await client.post("/interactions", json=interaction_body(customer), headers=admin)
    purchase = (await client.post("/purchases", json=purchase_body(customer), headers=admin)).json()
    page = await client.get(f"/customers/{customer}/timeline?type=purchase", headers=admin)
    assert [(e["type"], e["id"]) for e in page.json()["items"]] == [("purchase", purchase["id"])]
    bad = await client.get(f"/customers/{customer}/timeline?type=letter", headers=admin)
    assert bad.status_code == 422
