"""The service desk: cases of every type, SLA policies and holidays, routing by skill,
escalation that moves work, claims and their return window, references, notices, canned
responses; `/complaints` as the complaint-type view.

Each test runs its own app on a fresh database (its policies, rules and holidays stay its own)
with a `ManualClock`, against the real PostgreSQL and broker.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.complaints.config import Settings
from services.complaints.main import create_app, sla_pass
from services.complaints.models import outbox
from shared.context import ManualClock
from tests.complaints.conftest import ADMIN, FAST, headers
from tests.helpers import serve

MANAGER = headers("manager", subject="boss")
AGENT = headers("agent", subject="agent-x")
# A Wednesday; Thursday 2026-10-01 is National Day.
WEDNESDAY_9AM = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)


class Desk:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, clock: ManualClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    async def create(self, expect: int = 201, **fields: Any) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:6]
        body = {
            "type": "inquiry",
            "customer_id": str(uuid.uuid4()),
            "channel": "phone",
            "contact": {"name": f"Li {suffix}", "email": f"li.{suffix}@example.com"},
            "subject": f"Question {suffix}",
            "description": "Private words of the customer.",
            **fields,
        }
        response = await self.client.post("/cases", json=body, headers=ADMIN)
        assert response.status_code == expect, response.text
        return response.json()

    async def move(self, case_id: str, to_status: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/cases/{case_id}/transitions", json={"to_status": to_status, **extra}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def patch(self, case: dict[str, Any], **changes: Any) -> dict[str, Any]:
        response = await self.client.patch(
            f"/cases/{case['id']}",
            json=changes,
            headers={**ADMIN, "If-Match": f'"{case["version"]}"'},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def put(self, path: str, body: Any) -> dict[str, Any]:
        response = await self.client.put(path, json=body, headers=MANAGER)
        assert response.status_code == 200, response.text
        return response.json()

    async def events(self, case_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(type, data) of the case's `case.*` events in the outbox, in order."""
        async with self.app.state.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.type, outbox.c.data)
                    .where(outbox.c.data["case_id"].astext == case_id)
                    .order_by(outbox.c.id)
                )
            ).all()
        return [(row.type.removeprefix("kehu.").rsplit(".", 1)[0], row.data) for row in rows]

    async def sla_pass(self) -> None:
        async with self.app.state.sessions.begin() as session:
            await sla_pass(self.app, session)


@pytest.fixture
async def desk(fresh_database: Any) -> AsyncIterator[Desk]:
    url = await fresh_database("complaints")
    settings = Settings(
        **{**FAST, "consumers_enabled": False, "sla_scheduler_enabled": False},
        service_database_url=url,
    )
    app = create_app(settings)
    app.state.clock = clock = ManualClock(WEDNESDAY_9AM)
    async for client in serve(app):
        yield Desk(app, client, clock)


async def test_a_repair_request_goes_by_skill_to_the_right_team_with_its_own_sla(
    desk: Desk,
) -> None:
    await desk.put(
        "/teams/field-service",
        {
            "lead": "lead-fs",
            "members": [
                {"agent_id": "fitter", "skills": ["installation"]},
                {"agent_id": "repairer-1", "skills": ["repair"]},
                {"agent_id": "repairer-2", "skills": ["repair", "maintenance"]},
            ],
        },
    )
    await desk.put("/teams/helpdesk", {"members": [{"agent_id": "clerk", "skills": ["repair"]}]})
    await desk.put(
        "/routing-rules",
        {
            "rules": [
                {
                    "type": "service_request",
                    "subtype": "repair",
                    "team": "field-service",
                    "skill": "repair",
                },
                {
                    "type": "service_request",
                    "subtype": "other",
                    "team": "field-service",
                    "skill": "plumbing",
                },
                {"type": "service_request", "team": "field-service", "skill": "installation"},
                {"team": "helpdesk"},
            ]
        },
    )
    policies = await desk.put(
        "/sla-policies",
        {
            "policies": [
                {
                    "name": "repair",
                    "type": "service_request",
                    "subtype": "repair",
                    "first_response_s": 2 * 3600,
                    "resolution_s": 48 * 3600,
                },
            ]
        },
    )
    assert [p["name"] for p in policies["policies"][:2]] == ["repair", "default/critical/A"]
    assert policies["policies"][0]["builtin"] is False and policies["policies"][1]["builtin"]

    first = await desk.create(type="service_request", subtype="repair", severity="low")
    second = await desk.create(type="service_request", subtype="repair", severity="low")
    # The least-loaded member with the skill, each in turn; never the fitter or the clerk.
    assert {first["assignee"], second["assignee"]} == {"repairer-1", "repairer-2"}
    assert first["team"] == second["team"] == "field-service"
    assert first["sla"]["policy"] == "repair"
    assert first["sla"]["first_response_target_s"] == 2 * 3600
    assert first["sla"]["resolution_target_s"] == 48 * 3600
    received = datetime.fromisoformat(first["received_at"])
    due = datetime.fromisoformat(first["sla"]["first_response_due_at"])
    assert due - received == timedelta(hours=2)

    install = await desk.create(type="service_request", subtype="installation")
    assert install["assignee"] == "fitter"
    # Other types do not match the repair policy: the default matrix (medium × C: 48 h).
    inquiry = await desk.create(type="inquiry")
    assert inquiry["team"] == "helpdesk" and inquiry["assignee"] == "clerk"
    assert inquiry["sla"]["policy"] == "default/medium/C"
    assert inquiry["sla"]["first_response_target_s"] == 48 * 3600

    # Nobody has the skill: the case waits in the team's queue, and says so.
    other = await desk.create(type="service_request", subtype="other")
    assert other["team"] == "field-service" and other["assignee"] is None
    assert [t for t, _ in await desk.events(other["id"])] == ["case.received", "case.queued"]
    queued = dict(await desk.events(other["id"]))["case.queued"]
    assert queued["team"] == "field-service" and queued["skill"] == "plumbing"
    teams = {t["name"]: t for t in (await desk.client.get("/teams", headers=ADMIN)).json()}
    assert teams["field-service"]["queued"] == 1
    loads = {m["agent_id"]: m["open_cases"] for m in teams["field-service"]["members"]}
    assert loads == {"fitter": 1, "repairer-1": 1, "repairer-2": 1}
    waiting = await desk.client.get(
        "/cases", params={"team": "field-service", "unassigned": "true"}, headers=ADMIN
    )
    assert [c["id"] for c in waiting.json()["items"]] == [other["id"]]

    # Changing the type re-applies the policies.
    retyped = await desk.patch(inquiry, type="service_request", subtype="repair")
    assert retyped["sla"]["policy"] == "repair"
    assert retyped["sla"]["first_response_target_s"] == 2 * 3600


async def test_configuring_the_desk_needs_desk_configure(desk: Desk) -> None:
    body = {"policies": [{"name": "x", "first_response_s": 60, "resolution_s": 600}]}
    refused = await desk.client.put("/sla-policies", json=body, headers=AGENT)
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "desk:configure"
    bad = await desk.client.put(
        "/sla-policies",
        json={"policies": [{"name": "y", "first_response_s": 0, "resolution_s": 1}]},
        headers=MANAGER,
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )


async def test_a_holiday_is_not_counted_against_the_sla(desk: Desk) -> None:
    calendar = {
        "business_hours": True,
        "timezone": "UTC",
        "day_start_hour": 9,
        "day_end_hour": 17,
        "weekdays": [0, 1, 2, 3, 4],
    }
    await desk.put(
        "/sla-policies",
        {
            "policies": [
                {
                    "name": "support",
                    "type": "technical_support",
                    "first_response_s": 16 * 3600,
                    "resolution_s": 40 * 3600,
                    "calendar": calendar,
                },
            ]
        },
    )
    without = await desk.create(type="technical_support")
    # 16 business hours from Wednesday 09:00: Wednesday and Thursday.
    assert without["sla"]["first_response_due_at"].startswith("2026-10-01T17:00:00")

    holiday = await desk.client.put(
        "/holidays/2026-10-01", json={"name": "国庆节"}, headers=MANAGER
    )
    assert holiday.status_code == 200, holiday.text
    listed = await desk.client.get("/holidays", params={"year": 2026}, headers=ADMIN)
    assert listed.json() == [{"day": "2026-10-01", "name": "国庆节"}]

    case = await desk.create(type="technical_support")
    # Thursday is skipped: Wednesday and Friday make the 16 hours.
    assert case["sla"]["first_response_due_at"].startswith("2026-10-02T17:00:00")
    # 40 business hours: Wed, Fri, Mon, Tue, Wed (2026-10-07) 17:00.
    assert case["sla"]["resolution_due_at"].startswith("2026-10-07T17:00:00")

    desk.clock.set(datetime(2026, 10, 2, 9, 0, tzinfo=UTC))  # Friday morning
    await desk.sla_pass()
    read = (await desk.client.get(f"/cases/{case['id']}", headers=ADMIN)).json()
    assert read["sla"]["status"] == "on_track"
    assert read["sla"]["remaining_seconds"] == 8 * 3600  # the holiday did not use any of it
    desk.clock.set(datetime(2026, 10, 2, 17, 1, tzinfo=UTC))
    await desk.sla_pass()
    read = (await desk.client.get(f"/cases/{case['id']}", headers=ADMIN)).json()
    assert read["sla"]["first_response_breached"] is True

    gone = await desk.client.delete("/holidays/2026-10-01", headers=MANAGER)
    assert gone.status_code == 204
    again = await desk.client.delete("/holidays/2026-10-01", headers=MANAGER)
    assert again.status_code == 404


async def test_raising_severity_to_critical_escalates_once_to_the_management_queue(
    desk: Desk,
) -> None:
    await desk.put(
        "/teams/care", {"lead": "lead-care", "members": [{"agent_id": "carer", "skills": []}]}
    )
    case = await desk.create(type="technical_support", team="care", severity="low")
    assert case["assignee"] == "carer" and case["queue"] is None

    high = await desk.patch(case, severity="high")
    assert high["escalation_level"] == 0 and high["assignee"] == "carer"
    critical = await desk.patch(high, severity="critical")
    assert critical["escalation_level"] == 2
    assert critical["queue"] == "management" and critical["assignee"] is None
    # Critical targets apply (critical × C: 4 h first response).
    assert critical["sla"]["first_response_target_s"] == 4 * 3600

    # Down and up again: no second escalation.
    lowered = await desk.patch(critical, severity="medium")
    again = await desk.patch(lowered, severity="critical")
    assert again["escalation_level"] == 2
    escalations = [d for t, d in await desk.events(case["id"]) if t == "case.escalated"]
    assert [(e["reason"], e["level"], e["assignee"], e["queue"]) for e in escalations] == [
        ("critical_raised", 2, None, "management")
    ]

    queue = (await desk.client.get("/queues/management", headers=ADMIN)).json()
    assert [c["id"] for c in queue["items"]] == [case["id"]]
    taken = await desk.client.post(
        f"/cases/{case['id']}/assignment", json={"assignee": "manager-1"}, headers=ADMIN
    )
    assert taken.json()["queue"] is None and taken.json()["assignee"] == "manager-1"
    assert (await desk.client.get("/queues/management", headers=ADMIN)).json()["items"] == []


async def test_manual_escalation_moves_to_the_team_lead_then_to_management(desk: Desk) -> None:
    await desk.put(
        "/teams/care", {"lead": "lead-care", "members": [{"agent_id": "carer", "skills": []}]}
    )
    case = await desk.create(team="care")
    url = f"/cases/{case['id']}/escalations"
    first = await desk.client.post(url, json={"note": "Angry"}, headers=ADMIN)
    assert first.json()["escalation_level"] == 1 and first.json()["assignee"] == "lead-care"
    second = await desk.client.post(url, json={}, headers=ADMIN)
    assert second.json()["queue"] == "management" and second.json()["assignee"] is None
    escalations = [d for t, d in await desk.events(case["id"]) if t == "case.escalated"]
    assert [(e["level"], e["assignee"], e["queue"]) for e in escalations] == [
        (1, "lead-care", None),
        (2, None, "management"),
    ]


async def test_a_claim_outside_the_return_window_is_refused_unless_a_manager_overrides(
    desk: Desk,
) -> None:
    def claim(days_ago: float, **extra: Any) -> dict[str, Any]:
        delivered = desk.clock.now() - timedelta(days=days_ago)
        return {
            "type": "claim",
            "claim": {
                "kind": "return",
                "purchase_id": str(uuid.uuid4()),
                "amount": "129.50",
                "currency": "CNY",
                "delivered_at": delivered.isoformat(),
                **extra,
            },
        }

    late = await desk.client.post(
        "/cases",
        json={
            **claim(8),
            "customer_id": str(uuid.uuid4()),
            "channel": "web_form",
            "subject": "Return",
            "description": "Too small",
        },
        headers=ADMIN,
    )
    assert late.status_code == 422
    problem = late.json()
    assert problem["type"].endswith("/return-window-passed")
    assert problem["return_window_days"] == 7 and problem["days_since_delivery"] == 8.0

    accepted = await desk.create(**claim(6.5))
    assert accepted["status"] == "received" and accepted["reference"].startswith("CL-2026-")
    assert accepted["claim"]["amount"] == "129.5000"
    assert accepted["claim"]["return_window_days"] == 7
    assert accepted["claim"]["window_overridden_by"] is None
    assert accepted["related_purchase_id"] == accepted["claim"]["purchase_id"]

    as_agent = await desk.client.post(
        "/cases",
        json={
            **claim(30, override_return_window=True),
            "customer_id": str(uuid.uuid4()),
            "channel": "phone",
            "subject": "Return",
            "description": "Late",
        },
        headers=AGENT,
    )
    assert as_agent.status_code == 403
    assert as_agent.json()["required_scope"] == "cases:override"
    as_manager = await desk.client.post(
        "/cases",
        json={
            **claim(30, override_return_window=True),
            "customer_id": str(uuid.uuid4()),
            "channel": "phone",
            "subject": "Return",
            "description": "Late",
        },
        headers=MANAGER,
    )
    assert as_manager.status_code == 201, as_manager.text
    assert as_manager.json()["claim"]["window_overridden_by"] == "boss"

    missing = await desk.create(expect=422, type="claim")
    assert "claim is required" in str(missing["errors"])


async def test_suggestions_have_their_own_lifecycle_and_every_case_a_reference(
    desk: Desk,
) -> None:
    first = await desk.create(type="suggestion")
    second = await desk.create(type="suggestion")
    assert re.fullmatch(r"SG-2026-\d{6}", first["reference"])
    assert int(second["reference"][-6:]) == int(first["reference"][-6:]) + 1
    assert first["allowed_transitions"] == ["acknowledged"]

    acknowledged = await desk.move(first["id"], "acknowledged")
    assert acknowledged["allowed_transitions"] == ["accepted", "declined"]
    wrong = await desk.client.post(
        f"/cases/{first['id']}/transitions", json={"to_status": "investigating"}, headers=ADMIN
    )
    assert wrong.status_code == 409
    assert wrong.json()["allowed"] == ["accepted", "declined"]
    accepted = await desk.move(first["id"], "accepted")
    assert accepted["outcome"] == "accepted" and accepted["revisit_due_at"] is None
    closed = await desk.move(first["id"], "closed")  # no revisit for suggestions
    assert closed["status"] == "closed"
    rated = await desk.client.post(
        f"/cases/{first['id']}/rating", json={"rating": 4}, headers=ADMIN
    )
    assert rated.status_code == 200 and rated.json()["rating"] == 4

    types = [t for t, _ in await desk.events(first["id"])]
    assert types == [
        "case.received",
        "case.status_changed",
        "case.acknowledged",
        "case.status_changed",
        "case.resolved",
        "case.status_changed",
        "case.closed",
        "case.rated",
    ]
    resolved = dict(await desk.events(first["id"]))["case.resolved"]
    assert resolved["status"] == "accepted" and resolved["outcome"] == "accepted"
    assert first["reference"] in resolved["outcome_summary"]


async def test_notices_carry_type_reference_and_outcome_without_personal_data(
    desk: Desk,
) -> None:
    await desk.put("/teams/fs", {"members": [{"agent_id": "fixer", "skills": ["repair"]}]})
    case = await desk.create(type="service_request", subtype="repair", team="fs")
    await desk.move(case["id"], "acknowledged")
    await desk.move(case["id"], "investigating")
    resolved = await desk.move(
        case["id"], "resolved", resolution="Replaced the pump", outcome="repaired"
    )
    assert resolved["outcome"] == "repaired" and resolved["revisit_due_at"] is not None
    events = dict(await desk.events(case["id"]))
    ack, done = events["case.acknowledged"], events["case.resolved"]
    for data in (ack, done):
        assert data["type"] == "service_request" and data["subtype"] == "repair"
        assert data["reference"] == case["reference"]
        text = str(data)
        assert "Li " not in text and "example.com" not in text and "Private" not in text
        assert "pump" not in text
    assert done["outcome"] == "repaired" and done["owner_id"] == "fixer"
    assert done["outcome_summary"] == (
        f"Your service request {case['reference']} has been resolved: repaired."
    )
    assert done["revisit_due_at"] is not None
    # Closing without the revisit's outcome is refused for revisited types.
    refused = await desk.client.post(
        f"/cases/{case['id']}/transitions", json={"to_status": "closed"}, headers=ADMIN
    )
    assert refused.status_code == 422 and refused.json()["field"] == "revisit_outcome"


async def test_canned_responses_per_type_and_locale_go_into_notes(desk: Desk) -> None:
    made = await desk.client.post(
        "/responses",
        json={
            "type": "service_request",
            "locale": "zh-CN",
            "title": "预约确认",
            "body": "您好，工程师将在24小时内联系您。",
        },
        headers=MANAGER,
    )
    assert made.status_code == 201, made.text
    await desk.client.post(
        "/responses",
        json={"type": "inquiry", "locale": "en", "title": "Thanks", "body": "Thank you."},
        headers=MANAGER,
    )
    found = await desk.client.get(
        "/responses", params={"type": "service_request", "locale": "zh-CN"}, headers=ADMIN
    )
    assert [r["title"] for r in found.json()] == ["预约确认"]
    case = await desk.create(type="service_request", subtype="maintenance")
    note = await desk.client.post(
        f"/cases/{case['id']}/notes",
        json={"response_id": made.json()["id"], "body": "Slot: Friday"},
        headers=ADMIN,
    )
    assert note.status_code == 201, note.text
    assert note.json()["body"] == "您好，工程师将在24小时内联系您。\n\nSlot: Friday"
    unknown = await desk.client.post(
        f"/cases/{case['id']}/notes", json={"response_id": str(uuid.uuid4())}, headers=ADMIN
    )
    assert unknown.status_code == 404
    url = f"/responses/{made.json()['id']}"
    stale = await desk.client.patch(
        url, json={"title": "新"}, headers={**MANAGER, "If-Match": '"9"'}
    )
    assert stale.status_code == 412
    changed = await desk.client.patch(
        url, json={"title": "上门维修预约"}, headers={**MANAGER, "If-Match": '"1"'}
    )
    assert changed.json()["title"] == "上门维修预约" and changed.json()["version"] == 2
    assert (await desk.client.delete(url, headers=MANAGER)).status_code == 204
    assert (await desk.client.get(url, headers=ADMIN)).status_code == 404


async def test_complaints_view_shows_only_complaints(desk: Desk) -> None:
    inquiry = await desk.create(type="inquiry")
    complaint = await desk.create(type="complaint", category="delivery")
    assert complaint["reference"].startswith("CP-2026-")
    missing = await desk.client.get(f"/complaints/{inquiry['id']}", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/complaint-not-found")
    moved = await desk.client.post(
        f"/complaints/{inquiry['id']}/transitions",
        json={"to_status": "acknowledged"},
        headers=ADMIN,
    )
    assert moved.status_code == 404
    old = await desk.client.get(f"/complaints/{complaint['id']}", headers=ADMIN)
    assert old.status_code == 200
    # The complaint view answers in its old shape: no case-only fields.
    assert "complainant" in old.json() and "type" not in old.json()
    assert "reference" not in old.json() and "policy" not in old.json()["sla"]
    listed = (await desk.client.get("/complaints", headers=ADMIN)).json()["items"]
    assert [c["id"] for c in listed] == [complaint["id"]]
    every = (await desk.client.get("/cases", headers=ADMIN)).json()["items"]
    assert {c["id"] for c in every} == {inquiry["id"], complaint["id"]}
    # And complaint.* events still go out for complaint-type cases.
    async with desk.app.state.engine.connect() as conn:
        types = (
            await conn.scalars(
                sa.select(outbox.c.type).where(
                    outbox.c.data["complaint_id"].astext == complaint["id"]
                )
            )
        ).all()
    assert [t.removeprefix("kehu.").rsplit(".", 1)[0] for t in types] == ["complaint.received"]


async def test_a_change_of_severity_recomputes_deadlines_keeping_the_time_paused(
    desk: Desk,
) -> None:
    case = await desk.create(type="technical_support", severity="low")
    received = datetime.fromisoformat(case["received_at"])
    await desk.move(case["id"], "acknowledged")
    await desk.move(case["id"], "investigating")
    await desk.move(case["id"], "waiting_on_customer")
    desk.clock.advance(hours=3)
    resumed = await desk.move(case["id"], "investigating")
    assert resumed["sla"]["paused_seconds"] == 3 * 3600
    raised = await desk.patch(resumed, severity="high")
    # high × C: 120 h resolution, moved out by the 3 h paused before the change.
    assert raised["sla"]["policy"] == "default/high/C"
    assert raised["sla"]["paused_seconds"] == 3 * 3600
    due = datetime.fromisoformat(raised["sla"]["resolution_due_at"])
    assert due - received == timedelta(hours=120 + 3)


async def test_a_policy_names_the_states_that_pause_its_clock(desk: Desk) -> None:
    await desk.put(
        "/sla-policies",
        {
            "policies": [
                {
                    "name": "inquiries",
                    "type": "inquiry",
                    "first_response_s": 3600,
                    "resolution_s": 8 * 3600,
                    "pause_states": ["waiting_on_customer", "investigating"],
                },
            ]
        },
    )
    case = await desk.create(type="inquiry")
    assert case["sla"]["pause_states"] == ["waiting_on_customer", "investigating"]
    await desk.move(case["id"], "acknowledged")
    investigating = await desk.move(case["id"], "investigating")
    assert investigating["sla"]["paused"] is True
    desk.clock.advance(hours=2)
    resolved = await desk.move(case["id"], "resolved", resolution="Answered")
    assert resolved["sla"]["paused_seconds"] == 2 * 3600
    due = datetime.fromisoformat(resolved["sla"]["resolution_due_at"])
    assert due - datetime.fromisoformat(case["received_at"]) == timedelta(hours=10)
