"""Two instances of every service on one database and one broker, under write load.

Each instance is a whole service app (its outbox relay, consumers and schedulers running)
served over real HTTP on a port of its own, so the pair behaves as two replicas or two
`KEHU_WORKERS` processes do. Writes go to both instances in turn; the test then shows that

- every outbox row of the test's customers is on its topic exactly once,
- each customer's events are on its topic in the order of their outbox positions,
- the schedulers act once: one SLA warning and one breach per complaint and target, one
  `followup.overdue` per follow-up, one cadence revisit per contacted customer, one accepted
  webhook delivery per subscribed event; every loyalty lot announced as expiring once and
  expired once; every outreach message (the load's own, the loyalty notices, a festival
  greeting) deferred through the quiet hours, then sent once: one mail each in the real SMTP
  sink,
- analytics' customer facts equal the purchases in the source database, and loyalty credited
  each of them once with the points they earn.

Time-driven work is driven by one `ManualClock` shared by every instance; "the other instance
found nothing left" is shown by waiting for every instance's jobs to make two more passes.
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
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.loyalty import rules
from services.outreach.config import Festival
from shared import scheduler
from shared.auth import issue_token
from shared.context import ManualClock
from shared.devstack import TansuBroker, free_port
from shared.migrate import SERVICES
from shared.settings import ServiceSettings
from tests.conftest import scratch_database
from tests.helpers import eventually, header, read_topic
from tests.profiles.test_data_protection import running
from tests.subscriptions.receiver import Receiver
from tests.subscriptions.receiver import running as receiving

PUBLISHERS = ("profiles", "interactions", "complaints", "loyalty", "outreach")
TOPICS = ("kehu.customers", "kehu.interactions", "kehu.complaints", "kehu.loyalty", "kehu.outreach")
CUSTOMERS = 24
QUICK = 0.2  # scheduler intervals: both instances race for every due row
# How far time moves once the load is in: past every cadence (C: 90 days), every loyalty lot's
# expiry and, by the two hours, outreach's quiet hours.
LATER = timedelta(days=120, hours=2)
SHANGHAI = ZoneInfo("Asia/Shanghai")
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
    # Every lot is announced as expiring once earned, and has expired by LATER.
    "loyalty": {"job_interval_s": QUICK, "expiry_months": 1, "expiring_notice_days": 400},
    "outreach": {
        "dispatch_interval_s": QUICK,
        "greetings_interval_s": QUICK,
        "default_timezone": "Asia/Shanghai",
    },
}
HEADERS = {"Authorization": f"Bearer {issue_token(ServiceSettings(), 'admin', subject='replicas')}"}


def outreach_world(clock: ManualClock, urls: dict[str, list[str]], sink: int) -> dict[str, Any]:
    """Outreach's settings that follow from the clock and the peers: quiet hours from the
    clock's start for an hour (the load's messages wait, and go out after LATER), a festival on
    the day LATER reaches, mail to the dev SMTP sink (run by whichever instance binds it first),
    contacts from profiles."""
    start = clock.now().astimezone(SHANGHAI)
    day = (clock.now() + LATER).astimezone(SHANGHAI).date()
    return {
        "quiet_start": start.strftime("%H:%M"),
        "quiet_end": (start + timedelta(hours=1)).strftime("%H:%M"),
        "festivals": [Festival(key="replicas", date=day, name_zh="副本节", name_en="Replica Day")],
        "dev_smtp_sink_port": sink,
        "smtp_url": f"smtp://127.0.0.1:{sink}",
        "profiles_url": urls["profiles"][0],
        "interactions_url": urls["interactions"][1],
        "loyalty_url": urls["loyalty"][0],
    }


def make_app(
    name: str, clock: ManualClock, bootstrap: str, world: dict[str, Any] | None = None
) -> FastAPI:
    config = importlib.import_module(f"services.{name}.config")
    settings = config.Settings(
        service_database_url=DATABASES[name],
        outbox_poll_interval_s=0.5,
        rate_limit_per_s=0,
        kafka_bootstrap_servers=bootstrap,
        **OVERRIDES[name],
        **(world or {}),
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
        urls: dict[str, list[str]] = defaultdict(list)
        sink = free_port()
        for name in SERVICES:  # outreach last: it is given its peers' addresses
            world = outreach_world(clock, urls, sink) if name == "outreach" else None
            for _ in range(2):
                app = make_app(name, clock, broker, world)
                apps[name].append(app)
                urls[name].append(await stack.enter_async_context(running(app, lifespan="on")))
                client = httpx.AsyncClient(base_url=urls[name][-1], headers=HEADERS, timeout=30)
                clients[name].append(await stack.enter_async_context(client))
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
    subjects: dict[str, list[str]] = {
        "customers": customers,
        "followups": [],
        "complaints": [],
        "messages": [],
    }

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
        async with gate:  # for the festival greeting
            consent = {"purpose": "marketing_email", "granted": True, "source": "web_form"}
            path = f"/customers/{customer}/consents"
            await ok(await r.client("profiles").post(path, json=consent))
        async with gate:
            message = {
                "customer_id": customer,
                "template": "case_resolved",
                "purpose": "transactional",
                "variables": {"reference": "C-7F3A21", "outcome": "replacement sent"},
            }
            response = await r.client("outreach").post("/messages", json=message)
            subjects["messages"].append((await ok(response))["id"])

    await asyncio.gather(*(work(c) for c in customers))
    return subjects


async def outbox_rows(customers: list[str]) -> dict[str, list[asyncpg.Record]]:
    rows = {}
    for service in PUBLISHERS:
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
        await settled(subjects)

        # Time passes: every follow-up, SLA target, cadence revisit, loyalty lot's expiry and
        # the festival fall due, the quiet hours end. Both instances of each service race for
        # the same rows.
        replicas.clock.advance(LATER)
        await scheduled_once(replicas, subjects)
        await loyalty_jobs_once(replicas, customers)
        await delivered_once(replicas, subjects)

        # Every event is published, once, in order.
        async def all_published() -> bool:
            rows = await outbox_rows(customers)
            return all(r["published_at"] is not None for s in rows.values() for r in s)

        await eventually(all_published, timeout=60, interval=0.5)
        rows = await outbox_rows(customers)
        await published_once_in_order(rows, set(customers), replicas.bootstrap)

        # Every customer event reached the webhook once (receivers see each webhook-id once).
        wanted = {
            str(r["event_id"]) for r in rows["profiles"] if r["type"].startswith("kehu.customer.")
        }

        async def delivered() -> bool:
            return wanted <= {json.loads(x.body)["id"] for x in receiver.accepted}

        await eventually(delivered, timeout=60, interval=0.5)
        await turns(replicas.apps["subscriptions"], "webhook-deliveries")
        ids = Counter(x.webhook_id for x in receiver.received)
        assert ids and max(ids.values()) == 1, f"deliveries repeated: {ids.most_common(3)}"
        events = Counter(json.loads(x.body)["id"] for x in receiver.accepted)
        assert {e for e, n in events.items() if n > 1} == set()

    await analytics_equals_source(customers)
    await loyalty_equals_source(customers)


async def turns(apps: list[FastAPI], *jobs: str) -> None:
    """Wait until each of `jobs` (default: every periodic job) of every one of `apps` has
    finished two more passes: the second began after this call, so whatever that instance
    could still claim, it has had its turn at."""
    before = [
        {job: n for job, n in scheduler.passes(app).items() if not jobs or job in jobs}
        for app in apps
    ]
    assert all(before), "an instance has run none of the jobs yet"

    async def turned() -> bool:
        return all(
            scheduler.passes(app)[job] >= n + 2
            for app, done in zip(apps, before, strict=True)
            for job, n in done.items()
        )

    await eventually(turned, timeout=60, interval=0.1)


async def count(service: str, sql: str, *args: Any) -> int:
    return int((await fetch(service, sql, *args))[0][0])


async def settled(subjects: dict[str, list[str]]) -> None:
    """Before time passes: loyalty has credited every purchase and announced every lot as
    expiring; outreach knows every customer and their consent, and has tried every message of
    the load (the loyalty notices included) and deferred it, as it is quiet hours."""
    customers = subjects["customers"]
    among = "customer_id = ANY($1::uuid[])"

    async def done() -> bool:
        purchases = await count(
            "interactions", f"SELECT count(*) FROM purchases WHERE {among}", customers
        )
        credited = await count(
            "loyalty", f"SELECT count(*) FROM purchases WHERE {among}", customers
        )
        unannounced = await count(
            "loyalty",
            f"SELECT count(*) FROM lots WHERE {among} AND NOT expiring_notified",
            customers,
        )
        notices = await count(
            "loyalty",
            "SELECT count(*) FROM outbox WHERE type = 'kehu.loyalty.points_expiring.v1' "
            "AND subject = ANY($1::text[])",
            customers,
        )
        consenting = await count(
            "outreach",
            "SELECT count(*) FROM customers c JOIN consents k USING (customer_id) "
            "WHERE c.dimensions_at IS NOT NULL AND k.purpose = 'marketing_email' AND k.granted "
            f"AND c.{among}",
            customers,
        )
        statuses = await fetch(
            "outreach", f"SELECT status, count(*) FROM messages WHERE {among} GROUP BY 1", customers
        )
        return (
            credited == purchases
            and unannounced == 0
            and consenting == len(customers)
            and {r[0]: r[1] for r in statuses} == {"deferred": len(customers) + notices}
        )

    await eventually(done, timeout=120, interval=0.5)


async def scheduled_once(replicas: Replicas, subjects: dict[str, list[str]]) -> None:
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

    async def told(kind: str) -> Counter[tuple[str, str]]:
        """`followup.<kind>` events per follow-up and due time. A revisit whose plan moved
        after it went overdue (a tier change arriving late) is rescheduled, announced again, and
        goes overdue again at its new due time; at one due time it is overdue once."""
        rows = await fetch(
            "interactions",
            "SELECT data->>'followup_id' AS f, data->>'due_at' AS due FROM outbox "
            "WHERE type = $2 AND subject = ANY($1::text[])",
            customers,
            f"kehu.followup.{kind}.v1",
        )
        return Counter((r["f"], r["due"]) for r in rows)

    async def overdue() -> Counter[tuple[str, str]]:
        return await told("overdue")

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
            and {f for f, _ in await overdue()} >= followups
        )

    with contextlib.suppress(AssertionError):  # the checks below say what is missing
        await eventually(done, timeout=60, interval=0.5)
    # The other instance's next passes: they must find nothing left.
    await turns(replicas.apps["interactions"] + replicas.apps["complaints"])
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
    late = {f for f, _ in notices}
    assert late >= followups, f"{len(followups - late)} follow-ups not overdue"
    assert max(notices.values()) == 1, f"overdue twice at one due time: {notices.most_common(3)}"
    unannounced = set(notices) - set(await told("scheduled"))
    assert not unannounced, f"overdue at a due time never scheduled: {sorted(unannounced)[:3]}"


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


async def loyalty_jobs_once(replicas: Replicas, customers: list[str]) -> None:
    """Each lot was announced as expiring once (the notices' points add up to the lots') and
    expired once (in one expiry entry; every balance back to zero)."""
    among = "customer_id = ANY($1::uuid[])"

    async def expired() -> bool:
        left = f"SELECT count(*) FROM lots WHERE {among} AND remaining > 0"
        return await count("loyalty", left, customers) == 0

    with contextlib.suppress(AssertionError):  # the checks below say what is missing
        await eventually(expired, timeout=60, interval=0.5)
    await turns(replicas.apps["loyalty"])
    lots = await fetch(
        "loyalty", f"SELECT id, customer_id::text, points FROM lots WHERE {among}", customers
    )
    earned: Counter[str] = Counter()
    for lot in lots:
        earned[lot["customer_id"]] += lot["points"]
    assert set(earned) == set(customers), "customers without points"

    expiries = await fetch(
        "loyalty",
        f"SELECT customer_id::text, points, details->'lots' AS lots FROM entries "
        f"WHERE kind = 'expire' AND {among}",
        customers,
    )
    taken = Counter(lot for e in expiries for lot in json.loads(e["lots"]))
    assert set(taken) == {lot["id"] for lot in lots}, "lots not expired"
    assert max(taken.values()) == 1, f"lots expired twice: {taken.most_common(3)}"
    lost: Counter[str] = Counter()
    for e in expiries:
        lost[e["customer_id"]] -= e["points"]
    assert lost == earned, "expired points differ from the points earned"

    notices = await fetch(
        "loyalty",
        "SELECT subject, (data->>'points')::int FROM outbox "
        "WHERE type = 'kehu.loyalty.points_expiring.v1' AND subject = ANY($1::text[])",
        customers,
    )
    announced: Counter[str] = Counter()
    for subject, points in notices:
        announced[subject] += points
    assert announced == earned, "lots announced as expiring twice or never"


async def delivered_once(replicas: Replicas, subjects: dict[str, list[str]]) -> None:
    """Every message (the load's own, each loyalty notice, the festival greeting) went out
    once: sent, one mail in the SMTP sink, one `sent` in its history, the last state; those
    queued during the quiet hours were deferred first."""
    customers = subjects["customers"]
    among = "customer_id = ANY($1::uuid[])"
    notices = Counter(
        r[0]
        for r in await fetch(
            "loyalty",
            "SELECT subject FROM outbox WHERE type = 'kehu.loyalty.points_expiring.v1' "
            "AND subject = ANY($1::text[])",
            customers,
        )
    )
    expected = Counter(
        {(c, t): 1 for c in customers for t in ("case_resolved", "festival_greeting")}
        | {(c, "loyalty_points_expiring"): n for c, n in notices.items()}
    )
    messages: list[asyncpg.Record] = []

    async def sent() -> bool:
        nonlocal messages
        messages = await fetch(
            "outreach",
            f"SELECT id, customer_id::text, template_key, status FROM messages WHERE {among}",
            customers,
        )
        return len(messages) == expected.total() and all(m["status"] == "sent" for m in messages)

    with contextlib.suppress(AssertionError):  # the checks below say what is missing
        await eventually(sent, timeout=60, interval=0.5)
    await turns(replicas.apps["outreach"], "outreach-dispatch")
    made = Counter((m["customer_id"], m["template_key"]) for m in messages)
    assert made == expected, (
        f"messages missing or repeated: {(made - expected) + (expected - made)}"
    )
    unsent = Counter(m["status"] for m in messages if m["status"] != "sent")
    assert not unsent, f"messages not sent: {unsent}"

    ids = [m["id"] for m in messages]
    mails = Counter(
        r[0]
        for r in await fetch(
            "outreach", "SELECT message_id FROM dev_mail WHERE message_id = ANY($1::uuid[])", ids
        )
    )
    assert set(mails) == set(ids), f"{len(set(ids) - set(mails))} messages never reached the sink"
    assert max(mails.values()) == 1, f"mailed twice: {mails.most_common(3)}"

    history: dict[Any, list[str]] = defaultdict(list)
    for r in await fetch(
        "outreach",
        "SELECT message_id, status FROM message_states WHERE message_id = ANY($1::uuid[]) "
        "ORDER BY id",
        ids,
    ):
        history[r["message_id"]].append(r["status"])
    for m in messages:
        states = history[m["id"]]
        assert states.count("sent") == 1 and states[-1] == "sent", f"{m['id']}: {states}"
        if m["template_key"] != "festival_greeting":  # queued in the quiet hours
            assert "deferred" in states, f"{m['id']} went out in the quiet hours: {states}"


async def loyalty_equals_source(customers: list[str]) -> None:
    """Loyalty credited each purchase in the source database once, with the points it earns
    (floor(amount) at one point per yuan; no member reaches a multiplying level)."""
    source = {
        r[0]: rules.points_for(r[1], Decimal(1), Decimal(1))
        for r in await fetch(
            "interactions",
            "SELECT id::text, amount FROM purchases WHERE customer_id = ANY($1::uuid[])",
            customers,
        )
    }
    credited = {
        r[0]: r[1]
        for r in await fetch(
            "loyalty",
            "SELECT purchase_id::text, points FROM purchases WHERE customer_id = ANY($1::uuid[])",
            customers,
        )
    }
    assert credited == source, "loyalty's credits differ from the purchases in the source"
    earns = Counter(
        (r[0], r[1])
        for r in await fetch(
            "loyalty",
            "SELECT source_id, points FROM entries WHERE kind = 'earn' "
            "AND customer_id = ANY($1::uuid[])",
            customers,
        )
    )
    assert earns == Counter(source.items()), "ledger earnings differ from the purchases"
