"""Two instances of every service on one database and one broker, under write load.

Each instance is a whole service app (its outbox relay, consumers and schedulers running), so
the pair behaves as two replicas or two `KEHU_WORKERS` processes do. Writes go to both
instances in turn; the test then shows that

- every outbox row of the test's customers is on its topic exactly once,
- each customer's events are on its topic in the order of their outbox positions,
- the schedulers act once: one SLA warning and one breach per complaint and target, one
  `followup.overdue` per follow-up, one cadence revisit per contacted customer, one accepted
  webhook delivery per subscribed event,
- analytics' customer facts equal the purchases in the source database.

Time-driven work is driven by one `ManualClock` shared by every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from shared.auth import issue_token
from shared.context import ManualClock
from shared.devstack import TansuBroker, free_port
from shared.settings import ServiceSettings
from tests.conftest import scratch_database
from tests.helpers import eventually, header, read_topic, serve
from tests.subscriptions.receiver import Receiver
from tests.subscriptions.receiver import running as receiving

SERVICES = ("profiles", "interactions", "complaints", "analytics", "subscriptions")
TOPICS = ("kehu.customers", "kehu.interactions", "kehu.complaints")
CUSTOMERS = 24
QUICK = 0.2  # scheduler intervals: both instances race for every due row
pytestmark = pytest.mark.timeout(480)
OVERRIDES: dict[str, dict[str, Any]] = {
    "profiles": {},
    "interactions": {
        "schedulers_enabled": True,
        "overdue_interval_s": QUICK,
        "revisit_interval_s": QUICK,
    },
    "complaints": {"sla_scheduler_enabled": True, "sla_scheduler_interval_s": QUICK},
    "analytics": {"catchup_every_s": 0},
    "subscriptions": {
        "webhook_allowed_networks": ["127.0.0.0/8"],
        "delivery_poll_interval_s": QUICK,
    },
}
HEADERS = {"Authorization": f"Bearer {issue_token(ServiceSettings(), 'admin', subject='replicas')}"}


def make_app(name: str, clock: ManualClock, bootstrap: str) -> FastAPI:
    config = importlib.import_module(f"services.{name}.config")
    settings = config.Settings(
        service_database_url=DATABASES[name],
        outbox_poll_interval_s=0.5,
        rate_limit_per_s=0,
        kafka_bootstrap_servers=bootstrap,
        **OVERRIDES[name],
    )
    app: FastAPI = importlib.import_module(f"services.{name}.main").create_app(settings)
    app.state.clock = clock
    return app


@dataclass
class Replicas:
    clock: ManualClock
    clients: dict[str, list[httpx.AsyncClient]]
    turn: itertools.count[int]
    apps: dict[str, list[FastAPI]]
    bootstrap: str

    def client(self, service: str) -> httpx.AsyncClient:
        """The service's instances in turn: consecutive writes land on different ones."""
        pair = self.clients[service]
        return pair[next(self.turn) % len(pair)]


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """A broker of this module's own: other suites' in-process services keep consumer groups of
    the same names on the shared broker (Tansu keeps their memberships after they stop, and
    some run for the whole session), which would hold the partitions and take the events."""
    tansu = TansuBroker(free_port())
    tansu.start()
    try:
        yield tansu.bootstrap
    finally:
        tansu.stop()


@pytest.fixture(scope="module")
async def replicas(broker: str) -> AsyncIterator[Replicas]:
    clock = ManualClock()
    async with AsyncExitStack() as stack:
        for name in SERVICES:
            DATABASES[name] = await stack.enter_async_context(scratch_database(name))
        clients: dict[str, list[httpx.AsyncClient]] = defaultdict(list)
        apps: dict[str, list[FastAPI]] = defaultdict(list)
        for name in SERVICES:
            for _ in range(2):
                app = make_app(name, clock, broker)
                apps[name].append(app)
                generator = serve(app)
                client = await generator.__anext__()
                client.headers.update(HEADERS)
                clients[name].append(client)
                stack.push_async_callback(generator.aclose)  # type: ignore[arg-type]
        yield Replicas(clock, clients, itertools.count(), apps, broker)


# The module's own database per service (`databases`): the suites' session-long apps (profiles',
# interactions', complaints') keep their relays and consumers on the shared databases running.
DATABASES: dict[str, str] = {}


def database(service: str) -> str:
    """The service's database, as asyncpg takes it."""
    url = make_url(DATABASES[service]).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def fetch(service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database(service))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def write_load(r: Replicas) -> dict[str, list[str]]:
    """Customers with changes, purchases, contacts, follow-ups and complaints, written through
    both instances of each service, eight requests at a time."""
    gate = asyncio.Semaphore(8)
    now = r.clock.now()

    async def create(i: int) -> str:
        async with gate:
            tag = uuid.uuid4().hex[:10]
            body = {"display_name": f"Replica {tag}", "email": f"r.{tag}@example.com"}
            return str((await ok(await r.client("profiles").post("/customers", json=body)))["id"])

    customers = list(await asyncio.gather(*(create(i) for i in range(CUSTOMERS))))
    subjects: dict[str, list[str]] = {"customers": customers, "followups": [], "complaints": []}

    async def work(customer: str) -> None:
        for n in range(2):
            async with gate:
                patch = {"notes": f"Call {n}", "region": f"r{n}"}
                response = await r.client("profiles").patch(
                    f"/customers/{customer}", json=patch, headers={"If-Match": "*"}
                )
                await ok(response, 200)
            async with gate:
                purchase = {
                    "customer_id": customer,
                    "external_ref": f"rp-{uuid.uuid4().hex[:12]}",
                    "occurred_at": (now - timedelta(days=n + 1)).isoformat(),
                    "amount": f"{100 + n}.50",
                    "cost": "60.00",
                    "currency": "CNY",
                }
                await ok(await r.client("interactions").post("/purchases", json=purchase))
        async with gate:
            contact = {
                "customer_id": customer,
                "channel": "phone",
                "direction": "outbound",
                "occurred_at": now.isoformat(),
                "subject": "Check-in",
                "outcome": "resolved",
            }
            await ok(await r.client("interactions").post("/interactions", json=contact))
        async with gate:
            due = (now + timedelta(hours=1)).isoformat()
            task = {"customer_id": customer, "kind": "needs_check", "due_at": due}
            response = await r.client("interactions").post("/followups", json=task)
            subjects["followups"].append((await ok(response))["id"])
        async with gate:
            complaint = {
                "customer_id": customer,
                "channel": "email",
                "complainant": {"name": "Wang Fang"},
                "subject": "Late delivery",
                "description": "The parcel came a week late.",
                "category": "delivery",
                "severity": "high",
            }
            response = await r.client("complaints").post("/complaints", json=complaint)
            subjects["complaints"].append((await ok(response))["id"])

    await asyncio.gather(*(work(c) for c in customers))
    return subjects


async def outbox_rows(customers: list[str]) -> dict[str, list[asyncpg.Record]]:
    rows = {}
    for service in ("profiles", "interactions", "complaints"):
        rows[service] = await fetch(
            service,
            "SELECT event_id, type, topic, subject, position, published_at, data FROM outbox "
            "WHERE subject = ANY($1::text[]) ORDER BY position",
            customers,
        )
    return rows


async def caught_up(apps: list[FastAPI]) -> bool:
    """Every consumer of these instances has fetched its partitions and has no lag."""
    assigned: Counter[str] = Counter()
    for app in apps:
        for runner in app.state.consumers:
            consumer = runner.consumer
            if consumer is None or runner.lag:
                return False
            partitions = consumer.assignment()
            if any(consumer.highwater(tp) is None for tp in partitions):
                return False
            assigned[runner.group_id] += len(partitions)
    return all(assigned.values())


async def test_two_instances_of_every_service_act_once_and_in_order(replicas: Replicas) -> None:
    # The webhook subscription is made once subscriptions' consumers hold their partitions.
    await eventually(lambda: caught_up(replicas.apps["subscriptions"]), timeout=120, interval=0.5)
    receiver = Receiver()
    async with receiving(receiver):
        subscription = await ok(
            await replicas.client("subscriptions").post(
                "/subscriptions",
                json={"url": receiver.url, "event_types": ["kehu.customer.*"]},
            )
        )
        receiver.secrets.append(subscription["secret"])
        subjects = await write_load(replicas)
        customers = subjects["customers"]

        # Time passes: every follow-up, SLA target and cadence revisit falls due. Both
        # instances of each service race for the same rows.
        replicas.clock.advance(days=120)  # past every cadence (C: 90 days)
        await scheduled_once(subjects)

        # Every event is published, once, in order.
        async def all_published() -> bool:
            rows = await outbox_rows(customers)
            return all(r["published_at"] is not None for s in rows.values() for r in s)

        await eventually(all_published, timeout=60, interval=0.5)
        rows = await outbox_rows(customers)
        await published_once_in_order(rows, set(customers), replicas.bootstrap)

        # Every customer event reached the webhook once (receivers see each webhook-id once).
        wanted = {str(r["event_id"]) for r in rows["profiles"]}

        async def delivered() -> bool:
            return wanted <= {json.loads(x.body)["id"] for x in receiver.accepted}

        await eventually(delivered, timeout=60, interval=0.5)
        await asyncio.sleep(1)  # a second instance delivering the same row would show by now
        ids = Counter(x.webhook_id for x in receiver.received)
        assert ids and max(ids.values()) == 1, f"deliveries repeated: {ids.most_common(3)}"
        events = Counter(json.loads(x.body)["id"] for x in receiver.accepted)
        assert {e for e, n in events.items() if n > 1} == set()

    await analytics_equals_source(customers)


async def scheduled_once(subjects: dict[str, list[str]]) -> None:
    customers, complaints = subjects["customers"], subjects["complaints"]

    async def sla_events() -> Counter[tuple[str, str, str]]:
        rows = await fetch(
            "complaints",
            "SELECT type, data->>'complaint_id' AS c, data->>'target' AS t FROM outbox "
            "WHERE type IN ('kehu.complaint.sla_warning.v1', 'kehu.complaint.sla_breached.v1') "
            "AND subject = ANY($1::text[])",
            customers,
        )
        return Counter((r["type"].split(".")[2], r["c"], r["t"]) for r in rows)

    async def revisits() -> list[asyncpg.Record]:
        return await fetch(
            "interactions",
            "SELECT customer_id, id FROM followups WHERE kind = 'revisit' AND origin = 'cadence' "
            "AND customer_id = ANY($1::uuid[])",
            customers,
        )

    async def overdue() -> Counter[str]:
        rows = await fetch(
            "interactions",
            "SELECT data->>'followup_id' AS f FROM outbox WHERE type = "
            "'kehu.followup.overdue.v1' AND subject = ANY($1::text[])",
            customers,
        )
        return Counter(r["f"] for r in rows)

    expected_sla = {
        (kind, c, target)
        for kind in ("sla_warning", "sla_breached")
        for c in complaints
        for target in ("first_response", "resolution")
    }

    async def done() -> bool:
        followups = set(subjects["followups"]) | {str(r["id"]) for r in await revisits()}
        return (
            set(await sla_events()) >= expected_sla
            and len({r["customer_id"] for r in await revisits()}) == len(customers)
            and set(await overdue()) >= followups
        )

    with contextlib.suppress(AssertionError):  # the checks below say what is missing
        await eventually(done, timeout=60, interval=0.5)
    await asyncio.sleep(1)  # the other instance's next passes: they must find nothing left
    sla = await sla_events()
    assert set(sla) == expected_sla, f"SLA events missing: {len(expected_sla - set(sla))}"
    assert max(sla.values()) == 1, f"SLA events repeated: {sla.most_common(3)}"
    per_customer = Counter(str(r["customer_id"]) for r in await revisits())
    missing = sorted(set(customers) - set(per_customer))
    states = await fetch(
        "interactions",
        "SELECT s.*, (SELECT json_agg(f) FROM followups f WHERE f.customer_id = s.customer_id) "
        "AS f FROM customer_state s WHERE customer_id = ANY($1::uuid[])",
        missing,
    )
    assert not missing, f"no revisit for {missing}: {[dict(s) for s in states]}"
    assert max(per_customer.values()) == 1, f"revisits repeated: {per_customer.most_common(3)}"
    notices = await overdue()
    followups = set(subjects["followups"]) | {str(r["id"]) for r in await revisits()}
    assert set(notices) >= followups, f"{len(followups - set(notices))} follow-ups not overdue"
    assert max(notices.values()) == 1, f"overdue published twice: {notices.most_common(3)}"


async def published_once_in_order(
    rows: dict[str, list[asyncpg.Record]], customers: set[str], bootstrap: str
) -> None:
    by_topic: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for service_rows in rows.values():
        for row in service_rows:
            by_topic[row["topic"]].append(row)
    for topic in TOPICS:
        expected = {str(r["event_id"]): r for r in by_topic[topic]}
        assert expected, f"no events of the test on {topic}"
        records = [
            r
            for r in await read_topic(bootstrap, topic, timeout=60)
            if header(r, "ce_subject") in customers
        ]
        seen = Counter(header(r, "ce_id") for r in records)
        assert set(seen) == set(expected), f"{topic}: events missing or foreign"
        assert max(seen.values()) == 1, f"{topic}: published twice: {seen.most_common(3)}"
        last: dict[str, int] = {}
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            subject, sequence = header(record, "ce_subject"), int(header(record, "ce_sequence"))
            assert subject is not None
            assert sequence > last.get(subject, 0), f"{topic}: {subject}'s events out of order"
            last[subject] = sequence


async def analytics_equals_source(customers: list[str]) -> None:
    source_sql = (
        "SELECT customer_id::text, count(*), sum(amount) FROM purchases "
        "WHERE customer_id = ANY($1::uuid[]) GROUP BY 1"
    )
    facts_sql = (
        "SELECT customer_id::text, purchases_total, revenue FROM customer_facts "
        "WHERE customer_id = ANY($1::uuid[]) AND purchases_total > 0"
    )

    def table(rows: list[asyncpg.Record]) -> dict[str, tuple[int, Decimal]]:
        return {r[0]: (int(r[1]), Decimal(r[2]).quantize(Decimal("0.01"))) for r in rows}

    source: dict[str, tuple[int, Decimal]] = {}
    facts: dict[str, tuple[int, Decimal]] = {}

    async def equal() -> bool:
        nonlocal source, facts
        source = table(await fetch("interactions", source_sql, customers))
        facts = table(await fetch("analytics", facts_sql, customers))
        return source == facts

    try:
        await eventually(equal, timeout=60, interval=0.5)
    except AssertionError:
        pass
    assert len(source) == len(customers)
    assert facts == source, "analytics differ from the purchases in the source database"
