"""Restore drill: data written through the services, backed up with `shared.backup`, restored
into fresh databases, serves the same answers and the same event feeds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from shared import backup
from shared.crypto import keyring
from shared.devstack import free_port
from shared.migrate import SERVICES, service_settings
from tests.helpers import eventually
from tests.security.stack import (
    Operation,
    feed,
    headers,
    make_app,
    operations,
    request_of,
    running,
    seed,
    settings,
)

SERVED = ("profiles", "interactions", "complaints")
ADMIN = headers("admin", subject="restore-drill")


def dsn(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def source_dsn(service: str) -> str:
    return dsn(service_settings(service).sqlalchemy_url)


def restored_url(service: str, database: str) -> str:
    return (
        make_url(service_settings(service).sqlalchemy_url)
        .set(database=database)
        .render_as_string(hide_password=False)
    )


async def fingerprint(database_dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every table's content."""
    conn = await asyncpg.connect(database_dsn)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
        result = {}
        for row in tables:
            name = f'"{row["schemaname"]}"."{row["tablename"]}"'
            count, digest = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {name} t"
            )
            result[name] = (count, digest)
        sequences = await conn.fetch(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
        )
        for s in sequences:
            result[f"sequence {s['schemaname']}.{s['sequencename']}"] = (0, str(s["last_value"]))
        return result
    finally:
        await conn.close()


def readable(
    ops: list[Operation], ids: dict[str, str]
) -> list[tuple[Operation, str, dict[str, Any]]]:
    """Every GET (but feeds and docs) with its concrete URL, path params from the seeded ids."""
    chosen = []
    for op in ops:
        # The audit log grows with every read of personal data (these reads too), so it is
        # compared as database content (the fingerprints), not as an answer.
        if op.method != "get" or op.public or op.path in ("/events", "/audit"):
            continue
        if any(p["name"] not in ids for p in op.parameters("path")):
            continue
        path, query = request_of(op, ids)
        chosen.append((op, path, query))
    return chosen


# Fields that say when the answer was made, not what the data is.
VOLATILE = {"exported_at", "generated_at", "as_of", "remaining_seconds"}


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(a.keys() | b.keys())
            for d in differences(a.get(k), b.get(k), f"{where}.{k}")
        ]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


async def answers(
    clients: dict[str, httpx.AsyncClient], requests: list[tuple[Operation, str, dict[str, Any]]]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for op, path, query in requests:
        response = await clients[op.service].get(path, params=query, headers=ADMIN)
        body = stable(response.json()) if response.content else None
        result[op.id] = (response.status_code, response.headers.get("etag"), body)
    for name, client in clients.items():
        result[f"{name} /events"] = await feed(client, ADMIN)
    return result


async def drop_databases(names: list[tuple[str, str]]) -> None:
    for service, database in names:
        admin = make_url(source_dsn(service)).set(database="postgres")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


async def sequenced(app: FastAPI) -> bool:
    """Whether every event in the app's outbox has its feed position."""
    async with app.state.engine.connect() as conn:
        pending = await conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE position IS NULL"))
        return pending == 0


def offline_settings(service: str, database_url: str, broker: str) -> Any:
    return settings(service, service_database_url=database_url, kafka_bootstrap_servers=broker)


async def test_a_restored_stack_serves_the_same_data_and_event_feeds(
    tmp_path: Path, fresh_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The drill runs on databases of its own and without a broker, so no other service of
    # the test session (consumers, SLA jobs) can change the data between answers and dumps.
    sources = {s: await fresh_database(s) for s in SERVICES}
    offline = f"127.0.0.1:{free_port()}"
    ops = operations(SERVED)
    apps = {n: make_app(n, offline_settings(n, sources[n], offline)) for n in SERVED}
    async with running(apps) as clients:
        seeded = await seed(clients, ADMIN)
        for app in apps.values():
            await eventually(lambda a=app: sequenced(a), timeout=30)
        requests = readable(ops, seeded.ids)
        before = await answers(clients, requests)
    assert before["profiles GET /customers/{customer_id}"][0] == 200
    assert before["complaints GET /complaints/{complaint_id}"][0] == 200
    assert before["interactions GET /purchases/{purchase_id}"][0] == 200
    assert all(before[f"{n} /events"] for n in SERVED), "a service's feed is empty"

    source_prints = {s: await fingerprint(dsn(url)) for s, url in sources.items()}
    # The tool finds each database as the services do: here <SERVICE>_DATABASE_URL.
    for service, url in sources.items():
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    # The CLI functions block (pg_dump/pg_restore); keep the event loop free while they run.
    folder = await asyncio.to_thread(backup.backup, tmp_path / "backups")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["service"] for e in manifest["databases"]] == list(SERVICES)
    for entry in manifest["databases"]:
        assert entry["database"] == make_url(sources[entry["service"]]).database
        assert entry["size"] == (folder / entry["file"]).stat().st_size > 0
        assert entry["sha256"] == backup.sha256_of(folder / entry["file"])
        assert entry["server_version"]
    assert manifest["pg_dump_version"].startswith("pg_dump")
    # The services seal PII: the manifest names the keys a restore needs (not the keys).
    active = keyring().active
    by_service = {e["service"]: e for e in manifest["databases"]}
    for service in SERVED:
        assert active in by_service[service]["encryption_key_ids"], by_service[service]
    assert manifest["blind_index_key_fingerprint"] == backup.index_key_fingerprint(keyring())
    assert str(keyring().keys[active]) not in (folder / "manifest.json").read_text()

    prefix = f"drill_{uuid.uuid4().hex[:8]}_"
    restored = await asyncio.to_thread(backup.restore, folder, prefix)
    try:
        assert restored == {s: prefix + str(make_url(u).database) for s, u in sources.items()}
        for service, database in restored.items():
            restored_print = await fingerprint(dsn(restored_url(service, database)))
            assert restored_print == source_prints[service], f"{service} differs after restore"

        apps = {
            n: make_app(n, offline_settings(n, restored_url(n, restored[n]), offline))
            for n in SERVED
        }
        async with running(apps) as clients:
            after = await answers(clients, requests)
            assert after.keys() == before.keys()
            differ = {k: d[:5] for k in before if (d := differences(before[k], after[k]))}
            assert not differ, f"the restored stack answers differently: {differ}"
            # The restored stack keeps working: sequences were restored, so a new customer
            # gets a fresh number instead of colliding with a restored one.
            response = await clients["profiles"].post(
                "/customers",
                json={"kind": "person", "display_name": f"After restore {uuid.uuid4().hex[:6]}"},
                headers=ADMIN,
            )
            assert response.status_code == 201, response.text
            assert response.json()["customer_number"] != seeded.customer["customer_number"]
    finally:
        await drop_databases(list(restored.items()))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.backup", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


async def test_a_tampered_backup_fails_verification_and_restores_nothing(tmp_path: Path) -> None:
    done = run_cli("backup", "--out", str(tmp_path), "--service", "subscriptions")
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert run_cli("verify", str(folder)).returncode == 0
    dump = folder / "subscriptions.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    verified = run_cli("verify", str(folder))
    assert verified.returncode == 1
    assert "subscriptions: subscriptions.dump fails its sha256 checksum" in verified.stderr

    prefix = f"drill_{uuid.uuid4().hex[:8]}_"
    refused = run_cli("restore", str(folder), "--target-prefix", prefix)
    assert refused.returncode == 1
    assert "failed verification" in refused.stderr
    assert await databases_named(prefix) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "no/such/backup"], "is not a backup folder"),
        (["restore", "."], "has no manifest.json"),
        (["backup", "--service", "billing"], "unknown service(s) billing"),
    ],
)
def test_bad_requests_fail_with_a_clear_error(args: list[str], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_server_is_reported_not_dumped(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    done = run_cli("backup", "--out", str(tmp_path), env={"DATABASE_URL": url})
    assert done.returncode == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no half-written backup folder


async def test_restoring_over_an_existing_database_replaces_it_even_while_connected(
    tmp_path: Path,
) -> None:
    folder = await asyncio.to_thread(backup.backup, tmp_path, ["subscriptions"])
    prefix = f"drill_{uuid.uuid4().hex[:8]}_"
    database = prefix + "kehu_subscriptions"
    try:
        await asyncio.to_thread(backup.restore, folder, prefix)
        target = dsn(restored_url("subscriptions", database))
        # Something written after the backup, and a client still connected (like a service).
        conn = await asyncpg.connect(target)
        await conn.execute("CREATE TABLE written_after_backup (id int)")
        restored = await asyncio.to_thread(backup.restore, folder, prefix)
        assert restored == {"subscriptions": database}
        assert conn.is_closed() or not await _alive(conn)
        fresh = await asyncpg.connect(target)
        try:
            assert await fresh.fetchval("SELECT to_regclass('written_after_backup')") is None
            assert await fresh.fetchval("SELECT count(*) FROM alembic_version") == 1
        finally:
            await fresh.close()
    finally:
        await drop_databases([("subscriptions", database)])


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
        return False
    return True


async def databases_named(prefix: str) -> list[str]:
    admin = make_url(source_dsn("subscriptions")).set(database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        )
        return [r["datname"] for r in rows]
    finally:
        await conn.close()


async def test_a_backup_whose_keys_this_environment_lacks_is_not_restored(tmp_path: Path) -> None:
    folder = await asyncio.to_thread(backup.backup, tmp_path, ["subscriptions"])
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["databases"][0]["encryption_key_ids"] = ["lost7"]
    manifest["blind_index_key_fingerprint"] = "0" * 16
    manifest_path.write_text(json.dumps(manifest))
    prefix = f"drill_{uuid.uuid4().hex[:8]}_"

    checked = run_cli("verify", str(folder))
    assert checked.returncode == 1
    assert "key id(s) lost7" in checked.stderr
    refused = run_cli("restore", str(folder), "--target-prefix", prefix)
    assert refused.returncode == 1
    assert "key id(s) lost7" in refused.stderr
    assert "KEHU_BLIND_INDEX_KEY differs" in refused.stderr
    assert await databases_named(prefix) == []

    forced = run_cli("restore", str(folder), "--target-prefix", prefix, "--allow-missing-keys")
    try:
        assert forced.returncode == 0, forced.stderr
        assert "warning: data is sealed with key id(s) lost7" in forced.stderr
        assert await databases_named(prefix) == [prefix + "kehu_subscriptions"]
    finally:
        await drop_databases([("subscriptions", prefix + "kehu_subscriptions")])
