"""Every service in-process, its OpenAPI operations, and seed data through the real APIs.

Shared by the security tests and the backup restore drill.
"""

from __future__ import annotations

import importlib
import random
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from shared.auth import issue_token
from shared.events import REGISTRY
from shared.migrate import SERVICES
from shared.settings import ServiceSettings
from tests.helpers import eventually, serve

# Quick relays and no periodic jobs: the tests drive the services, not the clock.
FAST: dict[str, dict[str, Any]] = {
    "profiles": {"outbox_poll_interval_s": 0.2},
    "interactions": {"outbox_poll_interval_s": 0.2, "schedulers_enabled": False},
    "complaints": {"outbox_poll_interval_s": 0.2, "sla_scheduler_enabled": False},
    "analytics": {"outbox_poll_interval_s": 0.2},
    "subscriptions": {"outbox_poll_interval_s": 0.2},
    "loyalty": {"outbox_poll_interval_s": 0.2, "jobs_enabled": False},
    "outreach": {"outbox_poll_interval_s": 0.2, "dispatcher_enabled": False},
}

# Operations that are public by design: health, metrics, the docs and the event catalog.
PUBLIC = re.compile(r"^/(health/|metrics$|docs|redoc|openapi\.json$|asyncapi\.|catalog|portal)")
METHODS = ("get", "post", "put", "patch", "delete")


def settings(name: str, **overrides: Any) -> ServiceSettings:
    config = importlib.import_module(f"services.{name}.config")
    return config.Settings(**{**FAST[name], **overrides})  # type: ignore[no-any-return]


def make_app(name: str, service_settings: ServiceSettings | None = None) -> FastAPI:
    main = importlib.import_module(f"services.{name}.main")
    return main.create_app(service_settings or settings(name))  # type: ignore[no-any-return]


@asynccontextmanager
async def running(
    apps: dict[str, FastAPI],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Serve every app (lifespan: relay, consumers) and yield a client per service."""
    async with AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            generator = serve(app)
            clients[name] = await generator.__anext__()
            stack.push_async_callback(generator.aclose)  # type: ignore[arg-type]
        yield clients


def headers(role: str = "admin", subject: str = "security-tests", **claims: Any) -> dict[str, str]:
    token = issue_token(ServiceSettings(), role, subject=subject, **claims)
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    spec: dict[str, Any] = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.service} {self.method.upper()} {self.path}"

    @property
    def public(self) -> bool:
        return bool(PUBLIC.match(self.path))

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.spec

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]


def operations(names: tuple[str, ...] = SERVICES) -> list[Operation]:
    """Every operation of every service's OpenAPI document."""
    ops = []
    for name in names:
        document = make_app(name).openapi()
        for path, item in document["paths"].items():
            for method in METHODS:
                if method in item:
                    ops.append(Operation(name, method, path, item[method]))
    return ops


def _sample(schema: dict[str, Any], name: str, ids: dict[str, str]) -> Any:
    """A plausible value for a required query parameter."""
    if name in ids:
        return ids[name]
    for key in ("example",):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            return _sample(variant, name, ids)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return datetime.now(UTC).isoformat()
    if schema.get("format") == "date":
        return datetime.now(UTC).date().isoformat()
    if schema.get("type") in ("integer", "number"):
        return schema.get("minimum", 1)
    if schema.get("type") == "boolean":
        return "false"
    return "x"


def _random_id(param: dict[str, Any]) -> str:
    if param.get("schema", {}).get("format") == "date":
        return (date(1900, 1, 1) + timedelta(days=random.randrange(73_000))).isoformat()
    return str(uuid.uuid4())


def request_of(op: Operation, ids: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """Concrete URL and query for `op`: path params from `ids` by name, else random UUIDs (a
    random day for a date)."""
    ids = ids or {}
    path = op.path
    for param in op.parameters("path"):
        name = param["name"]
        path = path.replace("{" + name + "}", ids.get(name) or _random_id(param))
    query = {}
    for param in op.parameters("query"):
        if param.get("required"):
            query[param["name"]] = _sample(param.get("schema", {}), param["name"], ids)
    return path, query


async def call(
    client: httpx.AsyncClient,
    op: Operation,
    hdrs: dict[str, str],
    ids: dict[str, str] | None = None,
) -> httpx.Response:
    path, query = request_of(op, ids)
    kwargs: dict[str, Any] = {"params": query, "headers": hdrs}
    if op.has_body:
        kwargs["json"] = {}
    return await client.request(op.method.upper(), path, **kwargs)


# -- seed data through the real APIs ---------------------------------------------------------


def unique() -> str:
    return uuid.uuid4().hex[:10]


def mobile() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


@dataclass
class Seeded:
    """One customer with data in profiles, interactions and complaints, and its PII."""

    customer: dict[str, Any]
    contact: dict[str, Any]
    purchase: dict[str, Any]
    interaction: dict[str, Any]
    complaint: dict[str, Any]
    emails: list[str]
    phones: list[str]
    names: list[str]  # names and the street address

    @property
    def pii(self) -> list[str]:
        return sorted({*self.emails, *self.phones, *self.names})

    @property
    def ids(self) -> dict[str, str]:
        return {
            "customer_id": self.customer["id"],
            **({"contact_id": self.contact["id"]} if self.contact else {}),
            "purchase_id": self.purchase["id"],
            "interaction_id": self.interaction["id"],
            "complaint_id": self.complaint["id"],
        }


def phone_forms(phone: str) -> list[str]:
    """The number as entered, as digits, and in E.164 (+86), however a service stores it."""
    digits = re.sub(r"\D", "", phone)
    return sorted({phone, digits[-11:], f"+86{digits[-11:]}", f"86{digits[-11:]}"})


async def seed(
    clients: dict[str, httpx.AsyncClient], admin: dict[str, str], kind: str = "organisation"
) -> Seeded:
    """A customer (e-mail, phone, address, notes; an organisation also gets a contact person),
    a purchase, an interaction, and a complaint with a note."""
    u = unique()
    email = f"Seeded.Person.{u}@Example.COM"
    phone = mobile()
    name = f"Seeded Person {u}"
    street = f"{u} Secret Garden Road"
    response = await clients["profiles"].post(
        "/customers",
        json={
            "kind": kind,
            "display_name": name,
            "email": email,
            "phone": phone,
            "region": "east",
            "industry": "retail",
            "addresses": [{"kind": "home", "line1": street, "city": "Shanghai"}],
            "notes": f"Call {name} on {phone}",
            "external_ref": f"sec-{u}",
        },
        headers={**admin, "Idempotency-Key": f"seed-customer-{u}"},
    )
    assert response.status_code == 201, response.text
    customer = response.json()
    customer_id = customer["id"]
    contact_email = f"assistant.{u}@example.org"
    contact_phone = mobile()
    contact: dict[str, Any] = {}
    if kind == "organisation":
        response = await clients["profiles"].post(
            f"/customers/{customer_id}/contacts",
            json={
                "name": f"Assistant {u}",
                "role": "assistant",
                "email": contact_email,
                "phone": contact_phone,
                "notes": f"Reach {name} through {contact_email}",
            },
            headers=admin,
        )
        assert response.status_code == 201, response.text
        contact = response.json()
    now = datetime.now(UTC)
    response = await clients["interactions"].post(
        "/purchases",
        json={
            "customer_id": customer_id,
            "external_ref": f"SO-{u}",
            "occurred_at": (now - timedelta(days=1)).isoformat(),
            "amount": "200.00",
            "cost": "150.00",
            "currency": "CNY",
            "status": "paid",
            "items": [{"sku": "SKU-1", "quantity": "2", "unit_price": "100.00"}],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    purchase = response.json()
    response = await clients["interactions"].post(
        "/interactions",
        json={
            "customer_id": customer_id,
            "channel": "phone",
            "direction": "outbound",
            "occurred_at": (now - timedelta(hours=1)).isoformat(),
            "contact_person": name,
            "subject": f"Call back {email}",
            "summary": f"Reached {name} on {phone}; wants a quote.",
            "outcome": "follow_up_needed",
            "agent_id": "agent-1",
            "duration_seconds": 300,
        },
        headers={**admin, "Idempotency-Key": f"seed-interaction-{u}"},
    )
    assert response.status_code == 201, response.text
    interaction = response.json()
    response = await clients["complaints"].post(
        "/complaints",
        json={
            "customer_id": customer_id,
            "channel": "email",
            "complainant": {"name": name, "email": email, "phone": phone},
            "subject": f"Parcel for {name} arrived damaged",
            "description": f"Please answer to {email} or {phone}.",
            "category": "delivery",
            "severity": "medium",
        },
        headers={**admin, "Idempotency-Key": f"seed-complaint-{u}"},
    )
    assert response.status_code == 201, response.text
    complaint = response.json()
    response = await clients["complaints"].post(
        f"/complaints/{complaint['id']}/notes",
        json={"body": f"Called {name} back on {phone}"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    emails = [email, email.lower(), *([contact_email] if contact else [])]
    phones = [*phone_forms(phone), *(phone_forms(contact_phone) if contact else [])]
    names = [name, street, *([f"Assistant {u}"] if contact else [])]
    return Seeded(customer, contact, purchase, interaction, complaint, emails, phones, names)


def leaks(text: str, pii: list[str]) -> list[str]:
    """The PII strings found in `text` (case-insensitive)."""
    lowered = text.lower()
    return [s for s in pii if s.lower() in lowered]


# -- waiting for the consumers -----------------------------------------------------------------


async def feed(client: httpx.AsyncClient, hdrs: dict[str, str]) -> list[dict[str, Any]]:
    """A service's whole retained event feed, from the start."""
    items: list[dict[str, Any]] = []
    after = "0"
    while True:
        response = await client.get("/events", params={"after": after, "limit": 1000}, headers=hdrs)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next_after"] == after:
            return items
        after = page["next_after"]


def about(event: dict[str, Any], customer_id: str) -> bool:
    return bool(
        event.get("subject") == customer_id
        or (event.get("data") or {}).get("customer_id") == customer_id
    )


def consumes(app: FastAPI, event_type: str) -> bool:
    """Whether one of the app's consumers subscribes to and handles `event_type`."""
    topic = REGISTRY.get(event_type).topic if event_type in REGISTRY else None
    return any(
        topic in runner.topics and (runner.batch_types is None or event_type in runner.batch_types)
        for runner in app.state.consumers
    )


async def processed(app: FastAPI, event_ids: set[str]) -> bool:
    """Whether the app's inbox holds every one of `event_ids`."""
    if not event_ids:
        return True
    async with app.state.engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT event_id FROM inbox WHERE event_id = ANY(:ids)"),
            {"ids": list(event_ids)},
        )
        return {r[0] for r in rows} == event_ids


async def relayed(app: FastAPI) -> bool:
    """Whether the app's relay has sequenced and published every event in its outbox."""
    async with app.state.engine.connect() as conn:
        pending = await conn.scalar(
            sa.text("SELECT count(*) FROM outbox WHERE position IS NULL OR published_at IS NULL")
        )
        return pending == 0


async def settle(
    apps: dict[str, FastAPI],
    clients: dict[str, httpx.AsyncClient],
    customer_id: str,
    hdrs: dict[str, str],
    *,
    only: set[str] | None = None,
    # Generous: the suite shares one broker, and earlier tests (a 10,000-row import) can leave
    # every consumer a backlog to work through first.
    timeout: float = 240.0,
) -> dict[str, list[dict[str, Any]]]:
    """Wait until every running consumer processed every event about `customer_id` (of the
    types in `only`, if given) that the services published; return those events per service."""
    # First every event written so far is sequenced (visible in the feed) and published.
    for app in apps.values():
        await eventually(lambda a=app: relayed(a), timeout=timeout)
    events: dict[str, list[dict[str, Any]]] = {}
    for name, client in clients.items():
        events[name] = [
            e
            for e in await feed(client, hdrs)
            if about(e, customer_id) and (only is None or e["type"] in only)
        ]
    published = [e for found in events.values() for e in found]
    for name, app in apps.items():
        wanted = {e["id"] for e in published if consumes(app, e["type"])}
        try:
            await eventually(lambda a=app, w=wanted: processed(a, w), timeout=timeout)
        except AssertionError:
            types = sorted({e["type"] for e in published if e["id"] in wanted})
            lag = [(r.group_id, r.lag, r.last_error) for r in app.state.consumers]
            raise AssertionError(f"{name} did not consume {types} in {timeout}s; {lag}") from None
    return events
