"""Data protection: encryption at rest, key rotation, masking by role, audit, export, erasure."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from services.interactions.models import idempotency_keys, metadata
from shared import crypto
from shared.contracts.customers import CustomerErased, CustomerMerged
from shared.idempotency import DEFAULT_SEAL_CONTEXT as SEAL_CONTEXT
from tests.conftest import auth
from tests.helpers import eventually, rotate_back
from tests.interactions.factories import (
    followup_body,
    interaction_body,
    now,
    produce,
    purchase_body,
    survey_body,
)

CONSUMER_TIMEOUT = 60.0
PII_COLUMNS = {
    "interactions": ("contact_person", "subject", "summary"),
    "followups": ("note",),
    "refunds": ("reason",),
    "surveys": ("comment",),
}


class Records:
    """One customer with a record of every kind, each text carrying a unique marker."""

    def __init__(self, customer: uuid.UUID, marker: str, agent: str, ids: dict[str, str]) -> None:
        self.customer, self.marker, self.agent, self.ids = customer, marker, agent, ids
        self.first_interaction: dict[str, Any] = {}


async def seed(
    client: httpx.AsyncClient, admin: dict[str, str], *, idempotency: bool = False
) -> Records:
    customer, marker = uuid.uuid4(), f"pii{uuid.uuid4().hex[:12]}"
    agent = f"agent-{uuid.uuid4().hex[:8]}"  # not personal data, so not the marker
    headers = {**admin, "Idempotency-Key": f"k-{marker}"} if idempotency else admin
    ids: dict[str, str] = {}

    async def post(path: str, body: dict[str, Any], with_headers: dict[str, str]) -> Any:
        response = await client.post(path, json=body, headers=with_headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    first = interaction_body(
        customer,
        contact_person=f"Wang {marker}",
        subject=f"Subject {marker}",
        summary=f"Summary {marker}",
    )
    ids["interaction"] = (await post("/interactions", first, headers))["id"]
    ids["followup"] = (
        await post(
            "/followups", followup_body(customer, note=f"Note {marker}", assignee_id=agent), admin
        )
    )["id"]
    ids["survey"] = (await post("/surveys", survey_body(customer, comment=f"Hi {marker}"), admin))[
        "id"
    ]
    ids["purchase"] = (await post("/purchases", purchase_body(customer), admin))["id"]
    ids["refund"] = (
        await post(
            f"/purchases/{ids['purchase']}/refunds",
            {"amount": "10.00", "reason": f"Broken {marker}"},
            admin,
        )
    )["id"]
    records = Records(customer, marker, agent, ids)
    records.first_interaction = first
    return records


async def raw_pii(app: FastAPI, records: Records) -> list[str]:
    """Every personal-text column of the customer's rows, as stored (no decryption)."""
    values: list[str] = []
    async with app.state.engine.connect() as conn:
        for table, columns in PII_COLUMNS.items():
            rows = await conn.execute(
                sa.text(f"SELECT {', '.join(columns)} FROM {table} WHERE customer_id = :c"),
                {"c": records.customer},
            )
            values += [v for row in rows for v in row if v is not None]
    return values


async def test_raw_rows_hold_ciphertext_not_the_text(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    records = await seed(client, admin, idempotency=True)
    stored = await raw_pii(app, records)
    assert len(stored) == 6  # name, subject, summary, note, comment, reason
    assert all(v.startswith("k1.") and records.marker not in v for v in stored)
    async with app.state.engine.connect() as conn:
        replies = await conn.scalar(
            sa.text("SELECT string_agg(body::text, '') FROM idempotency_keys WHERE key = :k"),
            {"k": f"k-{records.marker}"},
        )
    assert replies and records.marker not in replies, "stored replies are encrypted too"
    seen = await client.get(f"/interactions/{records.ids['interaction']}", headers=admin)
    assert seen.json()["summary"] == f"Summary {records.marker}"
    replay = await client.post(
        "/interactions",
        json=records.first_interaction,
        headers={**admin, "Idempotency-Key": f"k-{records.marker}"},
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == seen.json()


async def test_key_rotation_keeps_every_record_readable(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    records = await seed(client, admin)
    before = crypto.keyring()
    new_kid = f"rot{secrets.token_hex(4)}"
    rotated = crypto.Keyring(
        keys={new_kid: secrets.token_bytes(32), **before.keys},
        active=new_kid,
        index_key=before.index_key,
    )
    crypto.configure(rotated)
    try:
        assert await crypto.reencrypt(app.state.engine, metadata) >= 6
        stored = await raw_pii(app, records)
        assert stored and all(v.startswith(f"k1.{new_kid}.") for v in stored)
        timeline = await client.get(f"/customers/{records.customer}/timeline", headers=admin)
        texts = timeline.text
        for expected in ("Wang", "Subject", "Summary", "Note", "Hi", "Broken"):
            assert f"{expected} {records.marker}" in texts
    finally:
        # Rotate back: the shared test database is read by other processes (the fuzzer's
        # services) that only know the original keyring.
        await rotate_back(app.state.engine, metadata, rotated, before)


async def test_an_analyst_never_receives_unmasked_text(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    records = await seed(client, admin)
    analyst = auth(token("analyst"))
    c, ids = records.customer, records.ids
    agent = records.agent
    paths = [
        f"/interactions/{ids['interaction']}",
        f"/interactions?customer_id={c}",
        f"/followups/{ids['followup']}",
        f"/followups?customer_id={c}",
        f"/agenda?assignee_id={agent}&days=30",
        f"/customers/{c}/timeline",
        f"/purchases/{ids['purchase']}/refunds",
        f"/surveys/{ids['survey']}",
        f"/surveys?customer_id={c}",
        f"/customers/{c}/export",
        f"/audit?customer_id={c}",
    ]
    redacted = 0
    for path in paths:
        response = await client.get(path, headers=analyst)
        assert response.status_code in (200, 403), (path, response.text)
        assert records.marker not in response.text, path
        redacted += response.text.count("[redacted]")
    assert redacted >= 6 + 6  # each text once in its own endpoints, again in the timeline
    export = await client.get(f"/customers/{c}/export", headers=analyst)
    assert export.status_code == 403


async def test_reads_of_personal_data_and_changes_are_audited_and_append_only(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    records = await seed(client, admin)
    c = records.customer
    why = {"X-Purpose": "ticket 4711", "X-Request-ID": uuid.uuid4().hex}
    await client.get(f"/customers/{c}/timeline", headers={**admin, **why})
    await client.get(f"/customers/{c}/timeline", headers=auth(token("analyst")))  # masked
    entries = (await client.get(f"/audit?customer_id={c}&limit=500", headers=admin)).json()
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in entries["items"]:
        by_action.setdefault(entry["action"], []).append(entry)
    created = {e["resource"] for e in by_action["create"]}
    assert created == {"interaction", "followup", "survey", "purchase", "refund"}
    reads = by_action["read_pii"]
    assert {e["resource"] for e in reads} == {"interaction", "followup", "survey", "refund"}
    assert all(e["purpose"] == "ticket 4711" and e["role"] == "admin" for e in reads)
    assert all(e["request_id"] == why["X-Request-ID"] for e in reads)
    read_ids = {i for e in reads for i in e["resource_id"].split(",")}
    assert {records.ids[k] for k in ("interaction", "followup", "survey", "refund")} <= read_ids
    actor = reads[0]["actor"]
    by_actor = (await client.get(f"/audit?actor={actor}&limit=20", headers=admin)).json()
    assert by_actor["items"] and all(e["actor"] == actor for e in by_actor["items"])

    async with app.state.engine.connect() as conn:
        for sql in (
            "UPDATE audit_log SET actor = 'x' WHERE customer_id = :c",
            "DELETE FROM audit_log WHERE customer_id = :c",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with conn.begin():
                    await conn.execute(sa.text(sql), {"c": str(c)})


async def test_export_returns_the_customers_records_decrypted_and_is_audited(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    records = await seed(client, admin)
    response = await client.get(f"/customers/{records.customer}/export", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["service"], body["status"], body["erased_at"]) == ("interactions", "ok", None)
    data = body["data"]
    for kind in ("interaction", "followup", "survey", "purchase", "refund"):
        assert [r["id"] for r in data[f"{kind}s"]] == [records.ids[kind]], kind
    assert data["interactions"][0]["summary"] == f"Summary {records.marker}"
    assert data["refunds"][0]["reason"] == f"Broken {records.marker}"
    assert data["followups"][0]["note"] == f"Note {records.marker}"
    audit = await client.get(f"/audit?customer_id={records.customer}&action=export", headers=admin)
    assert [e["resource"] for e in audit.json()["items"]] == ["customer"]
    nobody = await client.get(f"/customers/{uuid.uuid4()}/export", headers=admin)
    assert nobody.status_code == 200
    assert nobody.json()["status"] == "holds_nothing", "an unknown customer is not an error"
    assert nobody.json()["data"]["interactions"] == []


async def test_erasure_status_flips_and_no_table_keeps_the_personal_text(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    records = await seed(client, admin, idempotency=True)
    status = f"/customers/{records.customer}/erasure"
    before = (await client.get(status, headers=admin)).json()
    assert (before["service"], before["status"], before["erased"]) == (
        "interactions",
        "pending",
        False,
    )
    assert before["erased_at"] is None and before["kept"] == []
    unknown = (await client.get(f"/customers/{uuid.uuid4()}/erasure", headers=admin)).json()
    assert (unknown["status"], unknown["erased"]) == ("holds_nothing", True)
    await produce(
        app.state.settings, CustomerErased(customer_id=records.customer, occurred_at=now())
    )

    async def erased() -> bool:
        return bool((await client.get(status, headers=admin)).json()["erased"])

    await eventually(erased, timeout=CONSUMER_TIMEOUT)
    after = (await client.get(status, headers=admin)).json()
    assert after["status"] == "erased" and after["erased_at"] is not None
    assert any("surveys: scores" in kept for kept in after["kept"])
    assert await raw_pii(app, records) == [], "ciphertexts of the scrubbed text are gone"
    async with app.state.engine.connect() as conn:
        tables = (
            await conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ).scalars()
        for table in tables:
            found = await conn.scalar(
                sa.text(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE :m'),
                {"m": f"%{records.marker}%"},
            )
            assert found == 0, table
        # Decrypt every encrypted column of the service: the text is in no ciphertext either.
        for table_obj in metadata.sorted_tables:
            for column in table_obj.columns:
                if isinstance(column.type, crypto.EncryptedText):
                    values = (await conn.execute(sa.select(column))).scalars()
                    assert not any(v and records.marker in v for v in values), column
        replies = await conn.scalar(
            sa.text("SELECT count(*) FROM idempotency_keys WHERE body->>'customer_id' = :c"),
            {"c": str(records.customer)},
        )
        assert replies == 0
    erase_entries = await client.get(
        f"/audit?customer_id={records.customer}&action=erase", headers=admin
    )
    assert len(erase_entries.json()["items"]) == 1


async def test_a_reply_sealed_with_a_retired_key_is_refused_not_answered(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A retry whose stored reply no key of the keyring opens is a 409, never a 500."""
    key, body = f"retired-{uuid.uuid4().hex}", json.dumps(interaction_body()).encode()
    retired = crypto.Keyring(
        keys={"gone": secrets.token_bytes(32)}, active="gone", index_key=secrets.token_bytes(32)
    )
    sealed = {"customer_id": None, "ids": [], "sealed": retired.seal("{}", SEAL_CONTEXT)}
    fingerprint = hashlib.sha256(b"POST/interactions\0" + body).hexdigest()
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.insert(idempotency_keys).values(
                key=key,
                principal="dev-user",  # the subject of the admin token
                fingerprint=fingerprint,
                status_code=201,
                body=sealed,
                headers={},
            )
        )
    headers = {**admin, "Idempotency-Key": key, "Content-Type": "application/json"}
    retry = await client.post("/interactions", content=body, headers=headers)
    assert retry.status_code == 409, retry.text
    assert "retired key" in retry.json()["detail"]


async def test_records_merged_into_an_already_erased_customer_lose_their_text(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor = uuid.uuid4()
    duplicate = await seed(client, admin)
    await produce(
        app.state.settings,
        CustomerErased(customer_id=survivor, occurred_at=now()),
        CustomerMerged(
            customer_id=survivor, merged_customer_id=duplicate.customer, occurred_at=now()
        ),
    )

    async def scrubbed() -> bool:
        seen = await client.get(f"/interactions/{duplicate.ids['interaction']}", headers=admin)
        body = seen.json()
        return body["customer_id"] == str(survivor) and body["summary"] is None

    await eventually(scrubbed, timeout=CONSUMER_TIMEOUT)
    async with app.state.engine.connect() as conn:
        for table, columns in PII_COLUMNS.items():
            left = await conn.scalar(
                sa.text(
                    f"SELECT count(*) FROM {table} WHERE customer_id = :c AND "
                    f"({' OR '.join(f'{c} IS NOT NULL' for c in columns)})"
                ),
                {"c": survivor},
            )
            assert left == 0, table
