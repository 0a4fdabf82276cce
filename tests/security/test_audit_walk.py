"""No write can go unaudited: every write operation of every OpenAPI document runs through the
request context (whose commit adds an audit entry when the endpoint recorded none), and walked
with real requests, every write that succeeded left an audit entry for its request id."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared.context import builds_context
from shared.migrate import SERVICES
from tests.security.conftest import Stack
from tests.security.stack import Operation, Seeded, headers, operations, request_of

WRITES = ("post", "put", "patch", "delete")
WRITE_OPS = [op for op in operations() if op.method in WRITES and not op.public]


def _through_context(dependant: Dependant) -> bool:
    for dep in dependant.dependencies:
        if builds_context(getattr(dep, "call", None)):
            return True
        if _through_context(dep):
            return True
    return False


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (kept whole by FastAPI)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found.extend(api_routes(included.routes))
    return found


@pytest.mark.parametrize("name", SERVICES)
def test_every_write_route_runs_through_the_request_context(stack: Stack, name: str) -> None:
    app: FastAPI = stack.apps[name]
    writes = [
        route
        for route in api_routes(app.routes)
        if route.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]
    assert writes, f"{name} has no write route"
    outside = [
        f"{sorted(route.methods)} {route.path}"
        for route in writes
        if not _through_context(route.dependant)
    ]
    assert outside == [], f"{name}: writes that bypass the request context (unaudited): {outside}"


def later(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def earlier(hours: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def bodies(ids: dict[str, str]) -> dict[str, Any]:
    """A valid body per write operation, by `service METHOD path`; a complaint is a case, so
    the case sub-resources take the complaint ones' bodies."""
    found = _bodies(ids)
    for key in list(found):
        if "/complaints/{complaint_id}" in key:
            found[key.replace("/complaints/{complaint_id}", "/cases/{case_id}")] = found[key]
    return found


def _bodies(ids: dict[str, str]) -> dict[str, Any]:
    cid = ids["customer_id"]
    u = uuid.uuid4().hex[:8]
    return {
        "profiles POST /customers": {"kind": "organisation", "display_name": f"Walk {u} Ltd"},
        "profiles PATCH /customers/{customer_id}": {"industry": "retail"},
        "profiles POST /customers/import": [
            {"kind": "organisation", "display_name": f"Import {u} Ltd", "external_ref": f"w-{u}"}
        ],
        "profiles POST /customers/{customer_id}/contacts": {"name": f"Contact {u}"},
        "profiles PATCH /customers/{customer_id}/contacts/{contact_id}": {"role": "buyer"},
        "profiles POST /customers/{customer_id}/needs": {"title": f"Need {u}"},
        "profiles PATCH /customers/{customer_id}/needs/{need_id}": {"status": "in_progress"},
        "profiles POST /customers/{customer_id}/consents": {
            "purpose": "marketing_email",
            "granted": True,
            "source": "web form",
        },
        "interactions POST /interactions": {
            "customer_id": cid,
            "channel": "phone",
            "direction": "outbound",
            "occurred_at": earlier(),
            "summary": "walk",
            "outcome": "completed",
            "agent_id": "agent-walk",
        },
        "interactions PATCH /interactions/{interaction_id}": {"summary": "walk again"},
        "interactions POST /followups": {
            "customer_id": cid,
            "kind": "needs_check",
            "due_at": later(),
            "assignee_id": "agent-walk",
        },
        "interactions PATCH /followups/{followup_id}": {"note": "moved"},
        "interactions POST /followups/{followup_id}/complete": {},
        "interactions PUT /customers/{customer_id}/cadence": {"cadence_days": 21},
        "interactions POST /purchases": {
            "customer_id": cid,
            "external_ref": f"SO-walk-{u}",
            "occurred_at": earlier(),
            "amount": "100.00",
            "cost": "60.00",
            "currency": "CNY",
            "status": "paid",
        },
        "interactions PATCH /purchases/{purchase_id}": {"status": "delivered"},
        "interactions POST /purchases/{purchase_id}/refunds": {"amount": "10.00", "reason": "walk"},
        "interactions POST /surveys": {
            "customer_id": cid,
            "scores": {"overall": 4},
            "nps": 9,
        },
        "interactions POST /survey-invitations": {"customer_id": cid, "channel": "email"},
        "complaints POST /complaints": {
            "customer_id": cid,
            "channel": "email",
            "subject": "walk",
            "description": "walk",
            "category": "delivery",
            "severity": "low",
        },
        "complaints PATCH /complaints/{complaint_id}": {"category": "billing"},
        "complaints POST /complaints/{complaint_id}/transitions": {"to_status": "acknowledged"},
        "complaints POST /complaints/{complaint_id}/assignment": {"assignee": "agent-walk"},
        "complaints POST /complaints/{complaint_id}/escalations": {"note": "walk"},
        "complaints POST /complaints/{complaint_id}/notes": {"body": "walk"},
        "complaints POST /complaints/{complaint_id}/rating": {"rating": 4},
        "complaints POST /complaints/{complaint_id}/actions": {
            "kind": "corrective",
            "description": "walk",
            "owner": "ops-lead",
        },
        "complaints PATCH /complaints/{complaint_id}/actions/{action_id}": {"status": "done"},
        "complaints PUT /agents/{agent_id}": {"team": "walkers", "active": True},
        "complaints POST /cases": {
            "type": "inquiry",
            "customer_id": cid,
            "channel": "phone",
            "contact": {"name": "Walker"},
            "subject": "walk",
            "description": "walk",
        },
        "complaints PUT /holidays/{day}": {"name": "Walk day"},
        "complaints PUT /teams/{team}": {
            "members": [{"agent_id": "agent-walk", "skills": ["repair"]}]
        },
        "complaints POST /responses": {"locale": "en", "title": f"Walk {u}", "body": "walk"},
        "complaints PATCH /responses/{response_id}": {"title": f"Walked {u}"},
        "subscriptions POST /subscriptions": {
            "url": "http://127.0.0.1:9/hook",
            "event_types": ["kehu.customer.created.v1"],
        },
        "subscriptions PATCH /subscriptions/{subscription_id}": {"description": "walk"},
        "subscriptions POST /subscriptions/{subscription_id}/secret/rotate": {},
        "subscriptions POST /subscriptions/{subscription_id}/replay": {"since": earlier()},
        "loyalty POST /members": {"customer_id": cid},
        "loyalty POST /members/{customer_id}/adjustments": {"points": 50, "reason": "goodwill"},
        "loyalty POST /redemptions": {"customer_id": cid, "points": 10},
        "loyalty PUT /levels": {
            "levels": [{"code": "member", "name": "Member", "threshold": 0, "multiplier": "1"}]
        },
        "loyalty PUT /rewards/{reward_code}": {"name": "Walk", "kind": "coupon", "points_cost": 5},
        "outreach POST /messages": {
            "customer_id": cid,
            "template": "case_acknowledged",
            "purpose": "transactional",
            "variables": {"reference": "C-WALK"},
        },
        "outreach PUT /templates/{key}/{locale}": {
            "purpose": "transactional",
            "subject": "Walk {{ reference }}",
            "body": "Walking {{ name }}",
        },
        "outreach POST /templates/{key}/preview": {"locale": "en"},
        "outreach PUT /customers/{customer_id}/preferences": {"timezone": "Asia/Shanghai"},
    }


# Creating operations whose answer's `id` later operations need, by path parameter.
PRODUCES = {
    "complaints POST /responses": "response_id",
    "profiles POST /customers/{customer_id}/needs": "need_id",
    "interactions POST /followups": "followup_id",
    "complaints POST /complaints/{complaint_id}/actions": "action_id",
    "subscriptions POST /subscriptions": "subscription_id",
    "loyalty POST /redemptions": "redemption_id",
}
# Operations that end their resource get a fresh one from this creating operation first.
FRESH = {"interactions POST /followups/{followup_id}/cancel": "interactions POST /followups"}
# Run last: they end what the others work on; analytics' admin jobs rebuild the shared stack.
LAST = ("DELETE", "/erasure", "/merge", "/cancel", "/admin/")


def order(ops: list[Operation]) -> list[Operation]:
    def rank(op: Operation) -> tuple[int, int]:
        if any(mark in op.id for mark in LAST):
            return 2, 0
        return (0 if op.id in PRODUCES or op.method == "post" else 1), 0

    return sorted(ops, key=rank)


BUSY_RETRIES = 60


async def audited(app: FastAPI, request_id: str) -> int:
    async with app.state.engine.connect() as conn:
        return int(
            await conn.scalar(
                sa.text("SELECT count(*) FROM audit_log WHERE request_id = :rid"),
                {"rid": request_id},
            )
            or 0
        )


async def walk(
    stack: Stack,
    admin: dict[str, str],
    ids: dict[str, str],
    skip: set[str],
    succeeded: list[str],
    unaudited: list[str],
    failed: dict[str, str],
) -> None:
    for op in order(WRITE_OPS):
        if op.id in skip:
            continue
        table = bodies(ids)
        if op.id in FRESH:
            creator = FRESH[op.id]
            service, method, create_path = creator.split(" ")
            made = await stack.clients[service].request(
                method, create_path, json=table[creator], headers=admin
            )
            assert made.status_code == 201, made.text
            ids[PRODUCES[creator]] = made.json()["id"]
        path, query = request_of(op, ids)
        request_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {
            "params": query,
            "headers": {**admin, "X-Request-ID": request_id, "If-Match": "*"},
        }
        if op.has_body:
            kwargs["json"] = table.get(op.id, {})
        response = await stack.clients[op.service].request(op.method.upper(), path, **kwargs)
        for _ in range(BUSY_RETRIES):  # e.g. a re-rank the consumers started is still running
            if response.status_code != 409 or "retry" not in response.text:
                break
            await asyncio.sleep(0.5)
            kwargs["headers"]["X-Request-ID"] = request_id = str(uuid.uuid4())
            response = await stack.clients[op.service].request(op.method.upper(), path, **kwargs)
        if response.status_code >= 300:
            failed[op.id] = f"{response.status_code} {response.text[:200]}"
            continue
        succeeded.append(op.id)
        if op.id in PRODUCES:
            ids[PRODUCES[op.id]] = response.json()["id"]
        if await audited(stack.apps[op.service], request_id) == 0:
            unaudited.append(op.id)


async def test_every_write_that_succeeds_leaves_an_audit_entry(
    stack: Stack, seeded: Seeded
) -> None:
    admin = headers("admin", subject="audit-walk")
    ids = {
        **seeded.ids,
        "case_id": seeded.ids["complaint_id"],
        "agent_id": "agent-walk",
        "key": "walk_notice",
        "locale": "en",
        "day": "2031-05-02",
        "team": "walkers",
    }
    succeeded: list[str] = []
    unaudited: list[str] = []
    failed: dict[str, str] = {}
    skip = {"analytics POST /admin/rebuild"}  # rebuilds every projection of the shared stack
    # The walk's webhook receiver is on loopback, which the SSRF rules refuse by default.
    subscriptions = stack.apps["subscriptions"].state.settings
    allowed = subscriptions.webhook_allowed_networks
    subscriptions.webhook_allowed_networks = ["127.0.0.0/8"]
    try:
        await walk(stack, admin, ids, skip, succeeded, unaudited, failed)
    finally:
        subscriptions.webhook_allowed_networks = allowed
    assert unaudited == [], f"writes that succeeded without an audit entry: {unaudited}"
    # The walk must really exercise the writes, not pass on a wall of 4xx answers.
    for name in SERVICES:
        walked = [op.id for op in WRITE_OPS if op.service == name and op.id not in skip]
        done = [op for op in succeeded if op.startswith(name + " ")]
        assert len(done) >= max(1, len(walked) * 3 // 4), (
            f"{name}: only {len(done)} of {len(walked)} writes succeeded; failures: "
            f"{ {k: v for k, v in failed.items() if k.startswith(name + ' ')} }"
        )
