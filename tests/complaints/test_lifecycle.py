"""Points 2, 3 and 6: the state machine, investigation and resolution, rating and revisit."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.complaints.conftest import (
    ADMIN,
    clocked,
    event_types,
    events_of,
    file_complaint,
    headers,
    move,
    walk,
)
from tests.helpers import serve


async def test_full_lifecycle_publishes_every_transition_and_records_who_and_why(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    c = await file_complaint(client)
    response = await client.post(
        f"/complaints/{c['id']}/transitions",
        json={"to_status": "acknowledged", "note": "Called the customer back"},
        headers=headers("agent", subject="agent-ann"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["first_response_at"] is not None
    body = await walk(
        client, c["id"], "investigating", "waiting_on_customer", "investigating", "resolved"
    )
    assert body["status"] == "resolved" and body["revisit_due_at"] is not None
    assert body["sla"]["active_target"] is None and body["sla"]["remaining_seconds"] is None
    body = await walk(client, c["id"], "closed")
    assert body["revisit_outcome"] == "satisfied" and body["allowed_transitions"] == [
        "investigating"
    ]

    assert await event_types(app, c["id"]) == [
        "complaint.received",
        "complaint.status_changed",
        "complaint.acknowledged",
        "complaint.status_changed",
        "complaint.status_changed",
        "complaint.status_changed",
        "complaint.status_changed",
        "complaint.resolved",
        "complaint.status_changed",
        "complaint.closed",
    ]
    events = dict(
        (t, d) for t, d in await events_of(app, c["id"]) if t != "complaint.status_changed"
    )
    assert events["complaint.acknowledged"]["first_response_met"] is True
    assert events["complaint.resolved"]["resolution_met"] is True
    assert events["complaint.closed"]["revisit_outcome"] == "satisfied"
    changes = [d for t, d in await events_of(app, c["id"]) if t == "complaint.status_changed"]
    assert changes[0] == {**changes[0], "from_status": "received", "to_status": "acknowledged"}
    assert changes[0]["actor_id"] == "agent-ann"

    history = (await client.get(f"/complaints/{c['id']}/transitions", headers=ADMIN)).json()
    assert [h["to_status"] for h in history] == [
        "received",
        "acknowledged",
        "investigating",
        "waiting_on_customer",
        "investigating",
        "resolved",
        "closed",
    ]
    assert history[1]["actor"] == "agent-ann" and history[1]["note"] == "Called the customer back"


async def test_invalid_transition_is_409_naming_current_state_and_allowed_moves(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    c = await file_complaint(client)
    response = await move(client, c["id"], "resolved", resolution="x")
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/invalid-transition")
    assert problem["current_status"] == "received"
    assert problem["allowed"] == ["acknowledged"]
    assert await event_types(app, c["id"]) == ["complaint.received"]


async def test_resolving_needs_a_resolution_and_closing_needs_the_revisit_outcome(
    client: httpx.AsyncClient,
) -> None:
    c = await file_complaint(client)
    await walk(client, c["id"], "acknowledged", "investigating")
    no_resolution = await move(client, c["id"], "resolved")
    assert no_resolution.status_code == 422
    assert no_resolution.json()["field"] == "resolution"
    resolved = await move(
        client, c["id"], "resolved", resolution="Refunded", root_cause_category="supplier"
    )
    assert resolved.json()["root_cause_category"] == "supplier"
    no_outcome = await move(client, c["id"], "closed")
    assert no_outcome.status_code == 422
    assert no_outcome.json()["field"] == "revisit_outcome"
    current = (await client.get(f"/complaints/{c['id']}", headers=ADMIN)).json()
    assert current["status"] == "resolved"


async def test_reopen_within_the_window_publishes_reopened(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    c = await file_complaint(client)
    await walk(client, c["id"], "acknowledged", "investigating", "resolved", "closed")
    body = await walk(client, c["id"], "investigating")
    assert body["status"] == "investigating" and body["reopen_count"] == 1
    assert body["resolved_at"] is None and body["closed_at"] is None
    assert (await event_types(app, c["id"]))[-2:] == [
        "complaint.status_changed",
        "complaint.reopened",
    ]


async def test_reopening_after_the_window_is_409() -> None:
    app, clock = clocked(reopen_window_days=1)
    async for client in serve(app):
        c = await file_complaint(client)
        await walk(client, c["id"], "acknowledged", "investigating", "resolved")
        clock.advance(days=1, seconds=1)
        response = await move(client, c["id"], "investigating")
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"].endswith("/reopen-window-passed")
        assert problem["current_status"] == "resolved"
        assert problem["allowed"] == ["closed"]
        current = (await client.get(f"/complaints/{c['id']}", headers=ADMIN)).json()
        assert current["status"] == "resolved" and current["allowed_transitions"] == ["closed"]


async def test_investigation_details_need_if_match_and_bump_the_etag(
    client: httpx.AsyncClient,
) -> None:
    c = await file_complaint(client)
    url = f"/complaints/{c['id']}"
    patch = {"root_cause_category": "process", "root_cause": "Packing rule skipped"}
    assert (await client.patch(url, json=patch, headers=ADMIN)).status_code == 428
    stale = await client.patch(url, json=patch, headers={**ADMIN, "If-Match": '"7"'})
    assert stale.status_code == 412
    ok = await client.patch(url, json=patch, headers={**ADMIN, "If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"'
    assert ok.json()["root_cause"] == "Packing rule skipped"
    bad = await client.patch(
        url, json={"root_cause_category": "gremlins"}, headers={**ADMIN, "If-Match": '"2"'}
    )
    assert bad.status_code == 422
    cleared = await client.patch(
        url, json={"resolution": None}, headers={**ADMIN, "If-Match": '"2"'}
    )
    assert cleared.status_code == 422 and cleared.json()["field"] == "resolution"


async def test_severity_change_recomputes_the_deadlines(client: httpx.AsyncClient) -> None:
    c = await file_complaint(client, severity="low")
    ok = await client.patch(
        f"/complaints/{c['id']}",
        json={"severity": "critical"},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert ok.json()["sla"]["first_response_target_s"] == 4 * 3600  # critical × C
    assert ok.json()["sla"]["first_response_due_at"] < c["sla"]["first_response_due_at"]


async def test_notes_and_corrective_and_preventive_actions(client: httpx.AsyncClient) -> None:
    c = await file_complaint(client)
    base = f"/complaints/{c['id']}"
    note = await client.post(
        f"{base}/notes", json={"body": "Asked the carrier"}, headers=headers(subject="inv-1")
    )
    assert note.status_code == 201 and note.json()["author"] == "inv-1"
    notes = (await client.get(f"{base}/notes", headers=ADMIN)).json()
    assert [n["body"] for n in notes] == ["Asked the carrier"]

    created = await client.post(
        f"{base}/actions",
        json={
            "kind": "preventive",
            "description": "Switch carrier",
            "owner": "ops-lead",
            "due_date": "2026-12-01",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201 and created.json()["status"] == "open"
    action_id = created.json()["id"]
    done = await client.patch(f"{base}/actions/{action_id}", json={"status": "done"}, headers=ADMIN)
    assert done.status_code == 200 and done.json()["status"] == "done"
    bad_kind = await client.post(
        f"{base}/actions", json={"kind": "magic", "description": "x", "owner": "y"}, headers=ADMIN
    )
    assert bad_kind.status_code == 422
    listed = (await client.get(f"{base}/actions", headers=ADMIN)).json()
    assert [(a["kind"], a["status"], a["due_date"]) for a in listed] == [
        ("preventive", "done", "2026-12-01")
    ]


async def test_rating_after_resolution_publishes_rated(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    c = await file_complaint(client)
    early = await client.post(f"/complaints/{c['id']}/rating", json={"rating": 4}, headers=ADMIN)
    assert early.status_code == 409 and early.json()["current_status"] == "received"
    await walk(client, c["id"], "acknowledged", "investigating", "resolved")
    out_of_range = await client.post(
        f"/complaints/{c['id']}/rating", json={"rating": 6}, headers=ADMIN
    )
    assert out_of_range.status_code == 422
    rated = await client.post(
        f"/complaints/{c['id']}/rating", json={"rating": 4, "comment": "Quick"}, headers=ADMIN
    )
    assert rated.status_code == 200 and rated.json()["rating"] == 4
    events = await events_of(app, c["id"])
    assert events[-1][0] == "complaint.rated" and events[-1][1]["rating"] == 4
    assert "comment" not in events[-1][1]


async def test_manual_escalation_raises_the_level(client: httpx.AsyncClient, app: FastAPI) -> None:
    c = await file_complaint(client)
    body = (
        await client.post(f"/complaints/{c['id']}/escalations", json={"note": "VIP"}, headers=ADMIN)
    ).json()
    assert body["escalation_level"] == 1
    events = await events_of(app, c["id"])
    assert events[-1] == ("complaint.escalated", {**events[-1][1], "reason": "manual", "level": 1})


async def test_revisit_falls_due_after_resolution_and_closing_records_its_outcome() -> None:
    app, clock = clocked(revisit_after_days=7)
    async for client in serve(app):
        c = await file_complaint(client)
        await walk(client, c["id"], "acknowledged", "investigating", "resolved")
        query = {"customer_id": c["customer_id"], "revisit_due": "true"}

        async def listed(
            client: httpx.AsyncClient = client, query: dict[str, str] = query, cid: str = c["id"]
        ) -> bool:
            page = (await client.get("/complaints", params=query, headers=ADMIN)).json()
            return [x["id"] for x in page["items"]] == [cid]

        assert not await listed()
        clock.advance(days=7, seconds=1)
        assert await listed()
        closed = await move(client, c["id"], "closed", revisit_outcome="partially_satisfied")
        assert closed.json()["revisit_outcome"] == "partially_satisfied"
        assert not await listed()
