"""Data protection: encryption at rest, key rotation, masking by role, audit, export, erasure."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from services.complaints.models import metadata
from shared import crypto
from shared.contracts.customers import CustomerErased, CustomerMerged
from shared.events.envelope import to_kafka
from shared.kafka import new_producer
from shared.outbox import build_event
from shared.settings import ServiceSettings
from tests.complaints.conftest import ADMIN, complaint_body, headers, make_app
from tests.helpers import eventually, rotate_back, serve

CONSUMER_TIMEOUT = 60
ANALYST = headers("analyst", subject="analyst-1")
COMPLAINT_PII = (
    "complainant_name",
    "complainant_email",
    "complainant_phone",
    "subject",
    "description",
    "root_cause",
    "resolution",
    "rating_comment",
)
CHILD_PII = {
    "complaint_transitions": "note",
    "complaint_notes": "body",
    "complaint_actions": "description",
}


class Seeded:
    def __init__(self, customer: uuid.UUID, marker: str, complaint: dict[str, Any]) -> None:
        self.customer, self.marker, self.complaint = customer, marker, complaint
        self.id = complaint["id"]
        self.body: dict[str, Any] = {}


async def seed(client: httpx.AsyncClient) -> Seeded:
    """A complaint whose every free text and complainant detail carries a unique marker."""
    customer, marker = uuid.uuid4(), f"pii{uuid.uuid4().hex[:12]}"
    body = complaint_body(
        customer,
        complainant={
            "name": f"Maija {marker}",
            "email": f"{marker}@example.com",
            "phone": "+358 40 765 4321",
        },
        subject=f"Subject {marker}",
        description=f"Description {marker}",
    )
    created = await client.post(
        "/complaints", json=body, headers={**ADMIN, "Idempotency-Key": f"k-{marker}"}
    )
    assert created.status_code == 201, created.text
    seeded = Seeded(customer, marker, created.json())
    seeded.body = body
    base = f"/complaints/{seeded.id}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("notes", {"body": f"Note {marker}"}),
        ("actions", {"kind": "corrective", "description": f"Refund {marker}", "owner": "ops"}),
        ("transitions", {"to_status": "acknowledged", "note": f"Called {marker}"}),
        ("transitions", {"to_status": "investigating"}),
        ("transitions", {"to_status": "resolved", "resolution": f"Resolved {marker}"}),
        ("rating", {"rating": 4, "comment": f"Thanks {marker}"}),
    ]
    for path, payload in steps:
        response = await client.post(f"{base}/{path}", json=payload, headers=ADMIN)
        assert response.status_code in (200, 201), response.text
    return seeded


async def stored_pii(app: FastAPI, seeded: Seeded) -> list[str]:
    """Every personal-data column of the customer's rows, as stored (no decryption)."""
    values: list[str] = []
    async with app.state.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(f"SELECT {', '.join(COMPLAINT_PII)} FROM complaints WHERE id = :id"),
                {"id": seeded.id},
            )
        ).one()
        values += [v for v in row if v is not None]
        for table, column in CHILD_PII.items():
            rows = await conn.execute(
                sa.text(f"SELECT {column} FROM {table} WHERE complaint_id = :id"),
                {"id": seeded.id},
            )
            values += [v for (v,) in rows if v is not None]
    return values


@pytest.fixture(scope="module")
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(ServiceSettings(service_name="complaints-privacy-test"))
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def test_raw_rows_hold_ciphertext_not_the_complainants_details(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    seeded = await seed(client)
    stored = await stored_pii(app, seeded)
    # name, e-mail, phone, subject, description, resolution, rating comment; 2 notes; 1 action
    assert len(stored) >= 10
    assert all(v.startswith("k1.") and seeded.marker not in v for v in stored)
    assert not any("765 4321" in v for v in stored)
    async with app.state.engine.connect() as conn:
        reply = await conn.scalar(
            sa.text("SELECT body::text FROM idempotency_keys WHERE key = :k"),
            {"k": f"k-{seeded.marker}"},
        )
    assert reply and seeded.marker not in reply, "the stored reply is encrypted too"
    replay = await client.post(
        "/complaints",
        json=seeded.body,
        headers={**ADMIN, "Idempotency-Key": f"k-{seeded.marker}"},
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["complainant"]["email"] == f"{seeded.marker}@example.com"


async def test_key_rotation_keeps_every_complaint_readable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    seeded = await seed(client)
    before = crypto.keyring()
    new_kid = f"rot{secrets.token_hex(4)}"
    rotated = crypto.Keyring(
        keys={new_kid: secrets.token_bytes(32), **before.keys},
        active=new_kid,
        index_key=before.index_key,
    )
    crypto.configure(rotated)
    try:
        assert await crypto.reencrypt(app.state.engine, metadata) >= 10
        stored = await stored_pii(app, seeded)
        assert stored and all(v.startswith(f"k1.{new_kid}.") for v in stored)
        export = await client.get(f"/customers/{seeded.customer}/export", headers=ADMIN)
        text = export.text
        for expected in ("Maija", "Subject", "Description", "Note", "Refund", "Called"):
            assert f"{expected} {seeded.marker}" in text, expected
        assert f"{seeded.marker}@example.com" in text
    finally:
        # Rotate back: the shared test database is read by other processes (the fuzzer's
        # services) that only know the original keyring.
        await rotate_back(app.state.engine, metadata, rotated, before)


async def test_an_analyst_never_receives_an_unmasked_email_or_text(
    client: httpx.AsyncClient,
) -> None:
    seeded = await seed(client)
    base = f"/complaints/{seeded.id}"
    paths = [
        base,
        f"/complaints?customer_id={seeded.customer}",
        f"{base}/transitions",
        f"{base}/notes",
        f"{base}/actions",
        f"/customers/{seeded.customer}/export",
        f"/customers/{seeded.customer}/erasure",
        f"/audit?customer_id={seeded.customer}",
    ]
    statuses = []
    for path in paths:
        response = await client.get(path, headers=ANALYST)
        assert seeded.marker not in response.text, path
        assert "765 4321" not in response.text, path
        statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 200, 200, 403, 200, 403]
    seen = (await client.get(base, headers=ANALYST)).json()
    assert seen["complainant"]["email"] == "p***@example.com"
    assert seen["resolution"] == seen["rating_comment"] == "[redacted]"


async def test_reads_of_personal_data_and_changes_are_audited_and_append_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    seeded = await seed(client)
    why = {"X-Purpose": "complaint review", "X-Request-ID": uuid.uuid4().hex}
    await client.get(f"/complaints/{seeded.id}", headers={**ADMIN, **why})
    await client.get(f"/complaints/{seeded.id}/notes", headers={**ADMIN, **why})
    await client.get(f"/complaints/{seeded.id}", headers=ANALYST)  # masked: not a PII read
    entries = (
        await client.get(f"/audit?customer_id={seeded.customer}&limit=500", headers=ADMIN)
    ).json()["items"]
    changes = [e for e in entries if e["action"] in ("create", "update")]
    assert {e["resource"] for e in changes} == {
        "complaint",
        "complaint_note",
        "complaint_action",
    }
    assert len([e for e in changes if e["resource"] == "complaint"]) == 5  # create, 3 moves, rate
    reads = [e for e in entries if e["action"] == "read_pii"]
    assert {(e["resource"], e["resource_id"]) for e in reads} >= {("complaint", seeded.id)}
    assert {e["resource"] for e in reads} == {"complaint", "complaint_note"}
    assert all(e["purpose"] == "complaint review" for e in reads)
    assert all(e["request_id"] == why["X-Request-ID"] for e in reads)
    assert all(e["role"] != "analyst" for e in entries)
    by_actor = (await client.get("/audit?actor=tester&limit=5", headers=ADMIN)).json()["items"]
    assert by_actor and all(e["actor"] == "tester" for e in by_actor)
    assert (await client.get("/audit", headers=ANALYST)).status_code == 403

    async with app.state.engine.connect() as conn:
        for sql in (
            "UPDATE audit_log SET purpose = 'x' WHERE customer_id = :c",
            "DELETE FROM audit_log WHERE customer_id = :c",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with conn.begin():
                    await conn.execute(sa.text(sql), {"c": str(seeded.customer)})


async def test_export_returns_the_customers_complaints_decrypted_and_is_audited(
    client: httpx.AsyncClient,
) -> None:
    seeded = await seed(client)
    response = await client.get(f"/customers/{seeded.customer}/export", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["service"], body["status"], body["erased_at"]) == ("complaints", "ok", None)
    assert body["customer_id"] == str(seeded.customer)
    [exported] = body["data"]["complaints"]
    assert exported["complaint"]["id"] == seeded.id
    assert exported["complaint"]["complainant"]["name"] == f"Maija {seeded.marker}"
    assert exported["complaint"]["rating_comment"] == f"Thanks {seeded.marker}"
    assert [n["body"] for n in exported["notes"]] == [f"Note {seeded.marker}"]
    assert [a["description"] for a in exported["actions"]] == [f"Refund {seeded.marker}"]
    assert [t["to_status"] for t in exported["transitions"]] == [
        "received",
        "acknowledged",
        "investigating",
        "resolved",
    ]
    audit = await client.get(f"/audit?customer_id={seeded.customer}&action=export", headers=ADMIN)
    assert [e["actor"] for e in audit.json()["items"]] == ["tester"]
    nobody = await client.get(f"/customers/{uuid.uuid4()}/export", headers=ADMIN)
    assert nobody.status_code == 200
    assert nobody.json()["status"] == "holds_nothing"
    assert nobody.json()["data"]["complaints"] == []


async def test_export_reads_a_fixed_number_of_queries_however_many_complaints(
    client: httpx.AsyncClient,
) -> None:
    app = make_app(sla_scheduler_enabled=False)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM complaint" in statement or "FROM customer_tiers" in statement:
            statements.append(statement)

    async for own in serve(app):
        one, many = await seed(own), await seed(own)
        for _ in range(3):
            more = complaint_body(many.customer)
            assert (await own.post("/complaints", json=more, headers=ADMIN)).status_code == 201
        sa.event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
        try:
            queries = []
            for seeded, expected in ((one, 1), (many, 4)):
                statements.clear()
                response = await own.get(f"/customers/{seeded.customer}/export", headers=ADMIN)
                assert len(response.json()["data"]["complaints"]) == expected
                queries.append(len(statements))
        finally:
            sa.event.remove(app.state.engine.sync_engine, "before_cursor_execute", count)
    # The complaints, their transitions, notes and actions, the tier: one query each.
    assert queries == [5, 5]


async def test_erasure_status_flips_and_no_table_keeps_the_personal_data(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    seeded = await seed(client)
    status = f"/customers/{seeded.customer}/erasure"
    before = (await client.get(status, headers=ADMIN)).json()
    assert before == {
        "service": "complaints",
        "customer_id": str(seeded.customer),
        "status": "pending",
        "erased": False,
        "erased_at": None,
        "kept": [],
    }
    event = build_event(
        CustomerErased(customer_id=seeded.customer, occurred_at=datetime.now(UTC)), "/kehu/test"
    )
    key, value, kafka_headers = to_kafka(event)
    await producer.send_and_wait("kehu.customers", value, key=key, headers=kafka_headers)

    async def erased() -> bool:
        return bool((await client.get(status, headers=ADMIN)).json()["erased"])

    await eventually(erased, timeout=CONSUMER_TIMEOUT)
    after = (await client.get(status, headers=ADMIN)).json()
    assert after["status"] == "erased" and after["erased_at"] is not None
    assert after["kept"], "the report says what stays for the aggregates"
    assert await stored_pii(app, seeded) == [], "the ciphertexts are gone, not re-encrypted"
    async with app.state.engine.connect() as conn:
        tables = (
            await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ).scalars()
        for table in tables:
            found = await conn.scalar(
                sa.text(
                    f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE :m '
                    "OR t::text LIKE '%765 4321%'"
                ),
                {"m": f"%{seeded.marker}%"},
            )
            assert found == 0, table
        for table_obj in metadata.sorted_tables:
            for column in table_obj.columns:
                if isinstance(column.type, crypto.EncryptedText):
                    values = (await conn.execute(sa.select(column))).scalars()
                    assert not any(v and seeded.marker in v for v in values), column
    erase_entries = await client.get(
        f"/audit?customer_id={seeded.customer}&action=erase", headers=ADMIN
    )
    assert len(erase_entries.json()["items"]) == 1


async def test_complaints_merged_into_an_already_erased_customer_lose_their_details(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    survivor = uuid.uuid4()
    duplicate = await seed(client)
    for contract in (
        CustomerErased(customer_id=survivor, occurred_at=datetime.now(UTC)),
        CustomerMerged(
            customer_id=survivor,
            merged_customer_id=duplicate.customer,
            occurred_at=datetime.now(UTC),
        ),
    ):
        event = build_event(contract, "/kehu/test")
        key, value, kafka_headers = to_kafka(event)
        await producer.send_and_wait("kehu.customers", value, key=key, headers=kafka_headers)

    async def scrubbed() -> bool:
        body = (await client.get(f"/complaints/{duplicate.id}", headers=ADMIN)).json()
        return body["customer_id"] == str(survivor) and body["complainant"] is None

    await eventually(scrubbed, timeout=CONSUMER_TIMEOUT)
    assert await stored_pii(app, duplicate) == []
