"""Point 1: intake and registration."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from fastapi import FastAPI

from tests.complaints.conftest import (
    ADMIN,
    complaint_body,
    event_types,
    events_of,
    file_complaint,
    headers,
)
from tests.helpers import eventually, header, read_topic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")

PROBLEM = "application/problem+json"


async def test_registering_a_complaint_sets_deadlines_from_the_default_tier(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    purchase = str(uuid.uuid4())
    body = await file_complaint(client, severity="high", related_purchase_id=purchase)
    assert body["status"] == "received"
    assert body["tier"] == "C"
    assert body["related_purchase_id"] == purchase
    assert body["complainant"]["email"].endswith("@example.com")
    assert body["allowed_transitions"] == ["acknowledged"]
    sla = body["sla"]
    received = datetime.fromisoformat(body["received_at"])
    first_due = datetime.fromisoformat(sla["first_response_due_at"])
    # Default matrix: high × C = 24 h first response, 120 h resolution.
    assert (first_due - received).total_seconds() == 24 * 3600
    assert sla["status"] == "on_track" and sla["active_target"] == "first_response"
    assert 0 < sla["remaining_seconds"] <= 24 * 3600
    events = await events_of(app, body["id"])
    assert [t for t, _ in events] == ["complaint.received"]
    data = events[0][1]
    assert data["severity"] == "high" and data["channel"] == "email"
    assert "complainant" not in data and "description" not in data  # no PII in events


async def test_received_event_reaches_the_complaints_topic_keyed_by_customer(
    client: httpx.AsyncClient,
) -> None:
    body = await file_complaint(client)
    found: list[ConsumerRecord[Any, Any]] = []

    async def arrived() -> bool:
        records = await read_topic(BOOTSTRAP, "kehu.complaints", at_least=1, timeout=5)
        found[:] = [r for r in records if json.loads(r.value).get("complaint_id") == body["id"]]
        return bool(found)

    await eventually(arrived, timeout=30, interval=0.5)
    assert len(found) == 1
    assert found[0].key == body["customer_id"].encode()
    assert header(found[0], "ce_type") == "kehu.complaint.received.v1"


async def test_critical_complaint_escalates_to_management_at_intake(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = await file_complaint(client, severity="critical")
    assert body["escalation_level"] == 2
    events = await events_of(app, body["id"])
    assert [t for t, _ in events] == ["complaint.received", "complaint.escalated"]
    assert events[1][1]["reason"] == "critical_intake" and events[1][1]["level"] == 2


async def test_invalid_channel_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/complaints", json=complaint_body(channel="pigeon"), headers=ADMIN
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body.channel"]


async def test_assignee_and_team_together_are_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/complaints", json=complaint_body(assignee="a", team="t"), headers=ADMIN
    )
    assert response.status_code == 422


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    body = complaint_body()
    key = {"Idempotency-Key": uuid.uuid4().hex, **ADMIN}
    first = await client.post("/complaints", json=body, headers=key)
    second = await client.post("/complaints", json=body, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert await event_types(app, first.json()["id"]) == ["complaint.received"]


async def test_complainant_details_need_pii_read(client: httpx.AsyncClient) -> None:
    body = await file_complaint(client)
    as_analyst = await client.get(f"/complaints/{body['id']}", headers=headers("analyst"))
    assert as_analyst.status_code == 200
    masked = as_analyst.json()
    local, domain = body["complainant"]["email"].split("@")
    assert masked["complainant"] == {
        "name": "[redacted]",
        "email": f"{local[0]}***@{domain}",
        "phone": "+35*********4567",
    }
    assert (masked["subject"], masked["description"]) == ("[redacted]", "[redacted]")
    as_agent = await client.get(f"/complaints/{body['id']}", headers=headers("agent"))
    assert as_agent.json()["complainant"]["name"] == body["complainant"]["name"]
    assert as_agent.headers["etag"] == '"1"'


async def test_analyst_cannot_register_and_unknown_complaint_is_404(
    client: httpx.AsyncClient,
) -> None:
    forbidden = await client.post("/complaints", json=complaint_body(), headers=headers("analyst"))
    assert forbidden.status_code == 403
    missing = await client.get(f"/complaints/{uuid.uuid4()}", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/complaint-not-found")
