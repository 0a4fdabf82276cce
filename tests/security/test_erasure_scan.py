"""After a GDPR erasure, no service keeps the customer's personal data: neither in any column
of any table of any service database, nor in any retained event feed or topic."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared.contracts.customers import CustomerErased
from shared.migrate import SERVICES, service_settings
from tests.helpers import read_topic
from tests.security.conftest import Stack
from tests.security.stack import feed, headers, leaks, seed, settle

# The shared stack may first work through other tests' backlog (see stack.settle).
pytestmark = pytest.mark.timeout(600)

ADMIN = headers("admin", subject="gdpr-officer")
# Every column a string can hide in: text-like, JSON and arrays of those.
TEXTUAL = (
    "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
    "JOIN information_schema.tables t USING (table_schema, table_name) "
    "WHERE t.table_type = 'BASE TABLE' "
    "AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
    "AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea') "
    "OR c.data_type = 'ARRAY' OR c.data_type = 'USER-DEFINED')"
)


def database_dsn(service: str) -> str:
    url = make_url(service_settings(service).sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def scan_database(service: str, needles: list[str]) -> dict[str, list[str]]:
    """`schema.table.column` -> the needles found in it (case-insensitive, as text)."""
    conn = await asyncpg.connect(database_dsn(service))
    try:
        found: dict[str, list[str]] = {}
        lowered = [n.lower() for n in needles]
        for schema, table, column in await conn.fetch(TEXTUAL):
            rows = await conn.fetch(
                f'SELECT DISTINCT n FROM "{schema}"."{table}" t, unnest($1::text[]) AS n '
                f'WHERE strpos(lower(t."{column}"::text), n) > 0',
                lowered,
            )
            if rows:
                found[f"{service}: {schema}.{table}.{column}"] = [r["n"] for r in rows]
        return found
    finally:
        await conn.close()


async def scan_everything(stack: Stack, needles: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for service in SERVICES:
        found.update(await scan_database(service, needles))
        events = await feed(stack.clients[service], ADMIN)
        for event in events:
            hit = leaks(str(event), needles)
            if hit:
                found[f"{service}: GET /events {event['type']} {event['id']}"] = hit
    return found


async def test_no_service_database_holds_an_email_or_phone_in_plaintext(stack: Stack) -> None:
    """Encryption at rest, across services: raw rows hold ciphertext, never the address."""
    seeded = await seed(stack.clients, ADMIN)
    await settle(stack.apps, stack.clients, seeded.customer["id"], ADMIN)
    found: dict[str, list[str]] = {}
    for service in SERVICES:
        found.update(await scan_database(service, [*seeded.emails, *seeded.phones]))
    assert not found, f"plaintext e-mails/phones at rest: {found}"


@pytest.mark.parametrize("kind", ["organisation", "person"])
async def test_erasure_leaves_no_pii_in_any_database_feed_or_topic(stack: Stack, kind: str) -> None:
    seeded = await seed(stack.clients, ADMIN, kind=kind)
    customer_id = seeded.customer["id"]
    await settle(stack.apps, stack.clients, customer_id, ADMIN)

    # Controls: the scan reaches every service's tables (the customer's id is found in the
    # services that hold its data), and the PII is really held before the erasure.
    before = await scan_everything(stack, [customer_id])
    for service in ("profiles", "interactions", "complaints"):
        assert any(k.startswith(f"{service}: ") and "GET /events" not in k for k in before), (
            f"the scan found nothing about the customer in {service}: {sorted(before)}"
        )
    export = await stack.clients["profiles"].get(f"/customers/{customer_id}/export", headers=ADMIN)
    assert export.status_code == 200, export.text
    assert leaks(export.text, seeded.emails[:1])

    response = await stack.clients["profiles"].post(
        f"/customers/{customer_id}/erasure", headers=ADMIN
    )
    assert response.status_code == 200, response.text
    # Every consumer of customer.erased (interactions, complaints, ...) has processed it.
    erased = await settle(
        stack.apps, stack.clients, customer_id, ADMIN, only={CustomerErased.event_type()}
    )
    assert erased["profiles"], "profiles published no customer.erased"

    found = await scan_everything(stack, seeded.pii)
    topics = await topics_with(seeded.pii)
    found.update(topics)
    assert not found, "personal data survived the erasure:\n" + "\n".join(
        f"  {where}: {what}" for where, what in sorted(found.items())
    )

    # What the services answer (decrypted, for an admin) holds none of it either.
    answers: dict[str, Any] = {
        "profiles customer": await stack.clients["profiles"].get(
            f"/customers/{customer_id}", headers=ADMIN
        ),
        "profiles export": await stack.clients["profiles"].get(
            f"/customers/{customer_id}/export", headers=ADMIN
        ),
        "profiles contacts": await stack.clients["profiles"].get(
            f"/customers/{customer_id}/contacts", headers=ADMIN
        ),
        "interactions interaction": await stack.clients["interactions"].get(
            f"/interactions/{seeded.interaction['id']}", headers=ADMIN
        ),
        "interactions timeline": await stack.clients["interactions"].get(
            f"/customers/{customer_id}/timeline", headers=ADMIN
        ),
        "complaints complaint": await stack.clients["complaints"].get(
            f"/complaints/{seeded.complaint['id']}", headers=ADMIN
        ),
        "complaints notes": await stack.clients["complaints"].get(
            f"/complaints/{seeded.complaint['id']}/notes", headers=ADMIN
        ),
    }
    shown = {k: leaks(r.text, seeded.pii) for k, r in answers.items() if leaks(r.text, seeded.pii)}
    assert not shown, f"the services still answer personal data after the erasure: {shown}"


async def topics_with(needles: list[str]) -> dict[str, list[str]]:
    """Records of the domain topics on the broker that carry any of `needles`."""
    found: dict[str, list[str]] = {}
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    for topic in ("kehu.customers", "kehu.interactions", "kehu.complaints"):
        for record in await read_topic(bootstrap, topic, at_least=1, timeout=15):
            text = (record.value or b"").decode(errors="replace") + str(record.headers)
            hit = leaks(text, needles)
            if hit:
                found[f"topic {topic} offset {record.partition}/{record.offset}"] = hit
    return found
