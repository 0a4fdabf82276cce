"""Issue 8 in profiles: encryption at rest, blind indexes, rotation, masking, ownership, audit,
GDPR across services."""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from services.profiles.models import metadata
from shared import crypto
from shared.serve import KEEP_ALIVE_S
from tests.conftest import auth
from tests.helpers import rotate_back
from tests.profiles.factories import create_customer, customer_payload, mobile, unique
from tests.profiles.test_gdpr import occurrences

ENCRYPTED_COLUMNS = {
    "customers": (
        "display_name",
        "legal_name",
        "email",
        "phone",
        "addresses",
        "notes",
        "custom_attributes",
    ),
    "contacts": ("name", "email", "phone", "notes"),
    "needs": ("title", "description"),
    "customer_history": ("changes",),
}
INDEX_COLUMNS = ("email_index", "phone_index", "display_name_index", "name_index")


@asynccontextmanager
async def raw_db(app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection to the service database: no SQLAlchemy types decrypting."""
    url = app.state.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def org_with_pii(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """An organisation with a contact and a need, all carrying personal data."""
    customer = await create_customer(client, headers, kind="organisation")
    url = f"/customers/{customer['id']}"
    contact = await client.post(
        url + "/contacts",
        json={
            "name": f"Zhao Min {unique()}",
            "email": f"zhao.{unique()}@example.net",
            "phone": mobile(),
            "notes": f"private note {unique()}",
        },
        headers=headers,
    )
    assert contact.status_code == 201, contact.text
    need = await client.post(
        url + "/needs",
        json={"category": "service", "title": "Call back", "description": f"ask {unique()}"},
        headers=headers,
    )
    assert need.status_code == 201, need.text
    return {"customer": customer, "contact": contact.json(), "need": need.json()}


async def raw_tokens(app: FastAPI, customer_id: str) -> list[str]:
    """Every stored ciphertext and blind index belonging to the customer."""
    found: list[str] = []
    async with raw_db(app) as conn:
        for table, columns in ENCRYPTED_COLUMNS.items():
            key = "id" if table == "customers" else "customer_id"
            extra = INDEX_COLUMNS if table == "customers" else ()
            rows = await conn.fetch(
                f"SELECT {', '.join((*columns, *extra))} FROM {table} WHERE {key} = $1",
                uuid.UUID(customer_id),
            )
            found += [v for row in rows for v in row.values() if isinstance(v, str)]
    return found


async def test_raw_rows_show_ciphertext_not_personal_data(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    data = await org_with_pii(client, admin)
    customer, contact = data["customer"], data["contact"]
    async with raw_db(app) as conn:
        row = await conn.fetchrow(
            "SELECT * FROM customers WHERE id = $1", uuid.UUID(customer["id"])
        )
        contact_row = await conn.fetchrow(
            "SELECT * FROM contacts WHERE id = $1", uuid.UUID(contact["id"])
        )
        history = await conn.fetch(
            "SELECT changes FROM customer_history WHERE customer_id = $1", row["id"]
        )
    assert row is not None and contact_row is not None and history
    for column in ("email", "phone", "display_name", "addresses", "notes", "custom_attributes"):
        assert row[column].startswith("k1."), column
    for column in ("name", "email", "phone", "notes"):
        assert contact_row[column].startswith("k1."), column
    assert all(h["changes"].startswith("k1.") for h in history)
    dump = " ".join(str(v) for v in (*row.values(), *contact_row.values(), *history))
    for plain in (
        customer["email"],
        customer["phone"],
        customer["notes"],
        contact["email"],
        contact["phone"],
        contact["name"],
    ):
        assert plain not in dump
    # An organisation's name is not personal data: kept searchable in `search_name`.
    assert row["search_name"] == customer["display_name"]
    assert row["email_index"] == crypto.blind_index(customer["email"], "customers.email")
    # Through the API the data reads back decrypted.
    read = await client.get(f"/customers/{customer['id']}", headers=admin)
    assert read.json()["email"] == customer["email"]
    assert read.json()["addresses"] == customer["addresses"]


async def test_stored_idempotent_replies_are_encrypted_and_still_replay(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    payload, key = customer_payload(), f"k-{unique()}"
    headers = {**admin, "Idempotency-Key": key}
    first = await client.post("/customers", json=payload, headers=headers)
    again = await client.post("/customers", json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    async with raw_db(app) as conn:
        stored = await conn.fetchval("SELECT body::text FROM idempotency_keys WHERE key = $1", key)
    assert first.json()["email"] not in stored and '"sealed": "k1.' in stored
    assert first.json()["id"] in stored  # kept clear so erasure can find and drop it


async def test_duplicate_check_finds_the_same_email_and_phone_via_blind_index(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin)
    same_email = await client.post(
        "/customers", json=customer_payload(email=first["email"].upper()), headers=admin
    )
    assert same_email.status_code == 409
    assert same_email.json()["existing_customer_id"] == first["id"]
    assert same_email.json()["matched_on"] == ["email"]
    local = first["phone"].removeprefix("+86")  # the same number in local notation
    same_phone = await client.post("/customers", json=customer_payload(phone=local), headers=admin)
    assert same_phone.status_code == 409
    assert same_phone.json()["matched_on"] == ["phone"]
    allowed = await client.post(
        "/customers",
        params={"allow_duplicate": "true"},
        json=customer_payload(phone=local),
        headers=admin,
    )
    assert allowed.status_code == 201
    candidates = await client.get(f"/customers/{first['id']}/duplicates", headers=admin)
    assert [(c["customer_id"], c["matched_on"]) for c in candidates.json()] == [
        (allowed.json()["id"], ["phone"])
    ]


async def test_key_rotation_moves_every_record_to_the_new_key_and_keeps_them_readable(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    data = await org_with_pii(client, admin)
    customer = data["customer"]
    old = crypto.keyring()
    new_kid = f"rot{unique()[:6]}"
    rotated = crypto.Keyring(
        keys={new_kid: secrets.token_bytes(32), **old.keys},
        active=new_kid,
        index_key=old.index_key,
    )
    crypto.configure(rotated)  # the new key is configured first; the old still decrypts
    changed = await crypto.reencrypt(app.state.engine, metadata)
    assert changed > 0
    async with raw_db(app) as conn:
        for table, columns in ENCRYPTED_COLUMNS.items():
            for column in columns:
                stale = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL "
                    f"AND {column} NOT LIKE $1",
                    f"k1.{new_kid}.%",
                )
                assert stale == 0, f"{table}.{column}"
    read = await client.get(f"/customers/{customer['id']}", headers=admin)
    assert read.status_code == 200
    assert read.json()["email"] == customer["email"]
    assert read.json()["notes"] == customer["notes"]
    document = await client.get(f"/customers/{customer['id']}/export", headers=admin)
    export = document.json()["data"]
    assert export["contacts"][0]["email"] == data["contact"]["email"]
    assert export["needs"][0]["description"] == data["need"]["description"]
    assert export["history"]
    page = await client.get("/customers", params={"limit": 500}, headers=admin)
    assert page.status_code == 200  # every record in the archive still decrypts
    # The blind index key did not change, so look-ups still work.
    found = await client.get("/customers", params={"q": customer["email"]}, headers=admin)
    assert [c["id"] for c in found.json()["items"]] == [customer["id"]]
    # Once no value uses the old key, it can be retired: everything reads with the new key only.
    crypto.configure(
        crypto.Keyring(
            keys={new_kid: rotated.keys[new_kid]}, active=new_kid, index_key=old.index_key
        )
    )
    try:
        again = await client.get(f"/customers/{customer['id']}/export", headers=admin)
        assert again.status_code == 200
    finally:
        # Rotate back: the shared test database is read by other processes (the fuzzer's
        # services) that only know the original keyring.
        await rotate_back(app.state.engine, metadata, rotated, old)


async def test_analyst_never_receives_an_unmasked_email_from_any_endpoint(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str], app: FastAPI
) -> None:
    data = await org_with_pii(client, admin)
    customer, contact = data["customer"], data["contact"]
    dup = await client.post(
        "/customers",
        params={"allow_duplicate": "true"},
        json=customer_payload(kind="organisation", email=customer["email"]),
        headers=admin,
    )
    assert dup.status_code == 201
    secrets_ = [customer["email"], customer["phone"], contact["email"], contact["phone"]]
    cid, url = customer["id"], f"/customers/{customer['id']}"
    analyst = auth(token("analyst", subject=f"analyst-{unique()}"))
    ids = {"customer_id": cid, "contact_id": contact["id"], "need_id": data["need"]["id"]}
    # Every GET endpoint the service documents, with this customer's ids filled in.
    reads = [
        path.format(**ids) + ("?limit=500" if path in ("/customers", "/duplicates") else "")
        for path, operations in app.openapi()["paths"].items()
        if "get" in operations
    ]
    assert len(reads) >= 15, reads
    quoted = httpx.QueryParams
    reads += [f"/customers?{quoted(q=customer[k])}" for k in ("email", "phone")]
    for path in reads:
        response = await client.get(path, headers=analyst)
        if not path.startswith("/health"):  # readiness depends on the consumer's join
            assert response.status_code in (200, 403), (path, response.status_code)
        if path.startswith("/customers?q="):
            # Exact personal look-ups need pii:read: no answer tells whether it is a customer.
            assert cid not in [c["id"] for c in response.json()["items"]]
        for secret in secrets_:
            assert secret not in response.text, (path, secret)
    one = (await client.get(url, headers=analyst)).json()
    assert one["email"].startswith(customer["email"][0] + "***@")
    # Writers without pii:read (integration, here also allowed to merge) get the masked view
    # back from writes as well.
    integration = auth(token("integration", subject=f"int-{unique()}", scope="customers:merge"))
    writes = [
        await client.post(
            "/customers",
            json=customer_payload(email=f"w.{unique()}@example.com"),
            headers=integration,
        ),
        await client.post(
            url + "/merge",
            json={"duplicate_id": dup.json()["id"], "dry_run": True},
            headers=integration,
        ),
        await client.post(
            url + "/contacts",
            json={"name": "Xu Lan", "email": f"x.{unique()}@example.com"},
            headers=integration,
        ),
        await client.post(
            "/customers/import",
            json=[customer_payload(email=f"imp.{unique()}@example.com")],
            headers=integration,
        ),
    ]
    assert [w.status_code for w in writes] == [201, 200, 201, 200]
    assert "@example.com" not in writes[0].text.replace("***@example.com", "")
    assert customer["email"] not in writes[1].text
    assert "x." not in writes[2].json()["email"]
    assert "imp." not in writes[3].text
    assert cid


async def test_audit_log_records_pii_reads_and_changes_and_is_append_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token: Callable[..., str],
    session_of: Callable[[], Any],
) -> None:
    customer = await create_customer(client, admin)
    url, cid = f"/customers/{customer['id']}", customer["id"]
    purpose = f"support ticket {unique()}"
    read = await client.get(url, headers={**admin, "X-Purpose": purpose})
    await client.get("/customers", params={"owner_id": customer["owner_id"]}, headers=admin)
    await client.patch(url, json={"notes": "new"}, headers={**admin, "If-Match": '"1"'})
    await client.post(
        url + "/consents",
        json={"purpose": "marketing_email", "granted": True, "source": "web"},
        headers=admin,
    )
    await client.get(url + "/export", headers=admin)
    await client.get(url, headers=auth(token("analyst")))  # masked: not a PII read
    await client.delete(url, headers=admin)
    await client.post(url + "/erasure", headers=admin)

    auditor = auth(token("admin", subject="auditor"))
    entries = (
        await client.get("/audit", params={"customer_id": cid, "limit": 100}, headers=auditor)
    ).json()["items"]
    actions = [(e["action"], e["resource"]) for e in reversed(entries)]
    assert actions == [
        ("create", "customer"),
        ("read_pii", "customer"),
        ("read_pii", "customer"),
        ("update", "customer"),
        ("update", "consent"),
        ("export", "customer"),
        ("delete", "customer"),
        ("erase", "customer"),
    ]
    assert {e["actor"] for e in entries} == {"admin-tester"}
    detail = next(e for e in entries if e["purpose"] == purpose)
    assert detail["action"] == "read_pii"
    assert detail["request_id"] == read.headers["x-request-id"]
    update = next(e for e in entries if e["action"] == "update" and e["resource"] == "customer")
    assert update["fields"] == ["notes"]
    by_actor = await client.get("/audit", params={"actor": "admin-tester"}, headers=auditor)
    assert by_actor.status_code == 200 and by_actor.json()["items"]
    assert (await client.get("/audit", headers=auth(token("analyst")))).status_code == 403

    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with session_of() as session:
                await session.execute(sa.text(f"{statement} WHERE customer_id = :c"), {"c": cid})
    again = await client.get("/audit", params={"customer_id": cid, "limit": 100}, headers=auditor)
    assert again.json()["items"] == entries


async def test_agents_limited_to_their_own_customers(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str], app: FastAPI
) -> None:
    me = f"agent-{unique()}"
    agent = auth(token("agent", subject=me))
    mine = await create_customer(client, admin, owner_id=me)
    other = await create_customer(client, admin, owner_id=f"agent-{unique()}")
    settings = app.state.settings
    # Off (the default): an agent reads any customer.
    assert (await client.get(f"/customers/{other['id']}", headers=agent)).status_code == 200
    settings.agents_own_customers_only = True
    try:
        assert (await client.get(f"/customers/{mine['id']}", headers=agent)).status_code == 200
        for method, path, kwargs in (
            ("GET", f"/customers/{other['id']}", {}),
            ("PATCH", f"/customers/{other['id']}", {"json": {"region": "x"}}),
            ("GET", f"/customers/{other['id']}/contacts", {}),
            ("GET", f"/customers/{other['id']}/history", {}),
            ("POST", f"/customers/{other['id']}/needs", {"json": {"category": "c", "title": "t"}}),
        ):
            response = await client.request(
                method, path, headers={**agent, "If-Match": '"1"'}, **kwargs
            )
            assert response.status_code == 404, (method, path)
        listed = await client.get("/customers", params={"limit": 500}, headers=agent)
        assert {c["owner_id"] for c in listed.json()["items"]} == {me}
        foreign = await client.get(
            "/customers", params={"owner_id": other["owner_id"]}, headers=agent
        )
        assert foreign.json()["items"] == []
        refused = await client.post(
            "/customers", json=customer_payload(owner_id="someone-else"), headers=agent
        )
        assert refused.status_code == 403
        # A look-alike owned by someone else is reported, but not identified.
        clash = await client.post(
            "/customers", json=customer_payload(email=other["email"], owner_id=None), headers=agent
        )
        assert clash.status_code == 409
        assert clash.json().get("existing_customer_id") is None
        assert other["id"] not in clash.text and other["customer_number"] not in clash.text
        created = await client.post(
            "/customers", json=customer_payload(owner_id=None), headers=agent
        )
        assert created.status_code == 201 and created.json()["owner_id"] == me
        # Other roles are not limited.
        assert (await client.get(f"/customers/{other['id']}", headers=admin)).status_code == 200
        unchanged = await client.get(f"/customers/{other['id']}", headers=admin)
        assert unchanged.json()["region"] == other["region"]
    finally:
        settings.agents_own_customers_only = False


async def test_erasure_leaves_no_plaintext_ciphertext_or_blind_index_anywhere(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: FastAPI,
    session_of: Callable[[], Any],
) -> None:
    data = await org_with_pii(client, admin)
    customer, contact = data["customer"], data["contact"]
    cid = customer["id"]
    before = await raw_tokens(app, cid)
    indexes = [
        crypto.blind_index(customer["email"], "customers.email"),
        crypto.blind_index(customer["phone"], "customers.phone"),
    ]
    assert all(i in before for i in indexes)
    erased = await client.post(f"/customers/{cid}/erasure", headers=admin)
    assert erased.status_code == 200
    plain = [customer["email"], customer["phone"], contact["email"], contact["phone"]]
    leftovers = await occurrences(session_of, [*plain, *before, *indexes])
    assert leftovers == []


# -- GDPR across services --------------------------------------------------------------------


@asynccontextmanager
async def running(peer: FastAPI, lifespan: str = "off") -> AsyncIterator[str]:
    """Serve an app over real HTTP on a free local port, in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # A connection a client left open must not keep the app from its lifespan shutdown (its
    # consumers would stay in their groups for the rest of the run).
    config = uvicorn.Config(
        peer,
        log_level="warning",
        lifespan=lifespan,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_gdpr_export_without_pii_scope_is_refused(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    customer_id = "00000000-0000-0000-0000-000000000001"
    response = await client.get(
        f"/customers/{customer_id}/gdpr-export", headers=auth(token("analyst"))
    )
    assert response.status_code == 403
