"""The customer timeline: every kind of record in one chronological, paginated stream."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI

from shared.contracts.cases import CaseClosed, CaseReceived, CaseReopened, CaseStatusChanged
from shared.contracts.customers import NeedFields, NeedRecorded, NeedUpdated
from tests.helpers import eventually
from tests.interactions.factories import (
    followup_body,
    interaction_body,
    iso,
    now,
    processed,
    produce,
    purchase_body,
    survey_body,
)

CONSUMER_TIMEOUT = 60.0  # the consumer group's first join on Tansu takes a few seconds


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


async def test_case_and_need_events_give_each_record_its_newest_state_in_any_batching(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Published together, the events reach the consumer in one batch or a few: either way
    each record shows what one-by-one upserts in arrival order would, an older event arriving
    late changes nothing and the receipt places a case in time."""
    customer, case_id, need_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    base = now() - timedelta(hours=5)
    t = {n: base + timedelta(minutes=n) for n in range(12)}
    case = {"customer_id": customer, "case_id": case_id, "type": "complaint", "reference": "C-1"}

    def status(n: int, from_status: str, to_status: str) -> CaseStatusChanged:
        return CaseStatusChanged(
            **case, occurred_at=t[n], from_status=from_status, to_status=to_status
        )

    def need(cls: type[NeedFields], n: int, state: str, **extra: object) -> NeedFields:
        return cls(
            customer_id=customer,
            occurred_at=t[n],
            need_id=need_id,
            category="product",
            priority="high",
            status=state,
            **extra,
        )

    received = CaseReceived(
        **case,
        occurred_at=t[1],
        channel="email",
        category="delivery",
        severity="high",
        sla_policy="default",
        first_response_due_at=t[9],
        resolution_due_at=t[11],
    )
    first = await produce(
        app.state.settings,
        received,
        status(3, "acknowledged", "investigating"),
        status(2, "received", "acknowledged"),  # late: older than the investigation
        CaseReopened(**case, occurred_at=t[4]),
        need(NeedRecorded, 1, "open"),
        need(NeedUpdated, 5, "in_progress", changed_fields=["status"]),
    )
    for event_id in first:
        await eventually(lambda e=event_id: processed(app, e), timeout=CONSUMER_TIMEOUT)
    # A batch of its own, older than the record: ignored.
    [late] = await produce(app.state.settings, CaseClosed(**case, occurred_at=t[0]))
    await eventually(lambda: processed(app, late), timeout=CONSUMER_TIMEOUT)

    page = await client.get(f"/customers/{customer}/timeline", headers=admin)
    assert page.status_code == 200, page.text
    items = {entry["type"]: entry for entry in page.json()["items"]}
    assert items["case"]["id"] == str(case_id)
    assert datetime.fromisoformat(items["case"]["at"]) == t[1]
    assert items["case"]["case"] == {
        "type": "complaint",
        "subtype": None,
        "reference": "C-1",
        "status": "investigating",
        "outcome": None,
        "severity": "high",
        "channel": "email",
        "revisit_outcome": None,
    }
    assert datetime.fromisoformat(items["need"]["at"]) == t[1]
    assert items["need"]["need"]["status"] == "in_progress"
