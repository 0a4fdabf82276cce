"""Migration 0005 converts existing plaintext rows: ciphertext at rest, indexes filled, readable."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

from services.profiles import protection
from services.profiles.models import Contact, Customer, HistoryEntry, Need
from shared.db import create_engine
from shared.migrate import alembic_config, ensure_database
from tests.conftest import server_url, settings_for


async def test_migration_encrypts_existing_rows_and_fills_the_blind_indexes() -> None:
    name = f"kehu_t_{uuid.uuid4().hex[:12]}"
    url = server_url(name)
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    await ensure_database(url)
    engine = None
    try:
        await asyncio.to_thread(command.upgrade, alembic_config("profiles", url), "0004")
        person, org, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
        conn = await asyncpg.connect(plain)
        try:
            insert = (
                "INSERT INTO customers (id, kind, display_name, email, phone, addresses, notes, "
                "custom_attributes, company_name, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10, $10)"
            )
            addresses = json.dumps([{"kind": "home", "line1": "1 Bund Road"}])
            await conn.execute(
                insert,
                person,
                "person",
                "Chen Jie",
                "chen.jie@example.com",
                "+8613912345678",
                addresses,
                "met at fair",
                '{"vip": true}',
                "Acme",
                now,
            )
            await conn.execute(
                insert,
                org,
                "organisation",
                "Lotus Trading",
                None,
                None,
                "[]",
                None,
                "{}",
                None,
                now,
            )
            await conn.execute(
                "INSERT INTO contacts (id, customer_id, name, email, created_at, updated_at) "
                "VALUES ($1, $2, 'Zhou Yu', 'zhou.yu@example.com', $3, $3)",
                uuid.uuid4(),
                org,
                now,
            )
            await conn.execute(
                "INSERT INTO needs (id, customer_id, category, priority, status, title, "
                "description, created_at, updated_at) "
                "VALUES ($1, $2, 'product', 'high', 'open', 'Cold chain', 'ask Zhou', $3, $3)",
                uuid.uuid4(),
                org,
                now,
            )
            await conn.execute(
                "INSERT INTO customer_history (customer_id, entity, entity_id, action, actor, "
                "changed_at, changes) "
                "VALUES ($1, 'customer', $4, 'created', 'x', $2, $3::jsonb)",
                person,
                now,
                json.dumps({"email": {"old": None, "new": "chen.jie@example.com"}}),
                str(person),
            )
        finally:
            await conn.close()

        await asyncio.to_thread(command.upgrade, alembic_config("profiles", url), "head")

        conn = await asyncpg.connect(plain)
        try:
            raw = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", person)
            history = await conn.fetchval("SELECT changes FROM customer_history")
            contact = await conn.fetchval("SELECT email FROM contacts")
        finally:
            await conn.close()
        assert raw is not None
        for column in ("display_name", "email", "phone", "addresses", "notes"):
            assert raw[column].startswith("k1."), column
        assert "chen.jie" not in " ".join(str(v) for v in raw.values())
        assert history.startswith("k1.") and contact.startswith("k1.")
        assert raw["email_index"] == protection.email_index("chen.jie@example.com")
        assert raw["phone_index"] == protection.phone_index("+8613912345678")
        assert raw["name_index"] == protection.duplicate_name_index("person", "Chen Jie", "Acme")
        assert raw["search_name"] is None

        engine = create_engine(settings_for(url))
        async with engine.connect() as db:
            people = {c.id: c for c in (await db.execute(sa.select(Customer.__table__))).all()}
            assert people[person].email == "chen.jie@example.com"
            assert people[person].addresses == [{"kind": "home", "line1": "1 Bund Road"}]
            assert people[person].custom_attributes == {"vip": True}
            assert people[org].search_name == "Lotus Trading"
            assert people[org].addresses == []
            assert await db.scalar(sa.select(Contact.__table__.c.email)) == "zhou.yu@example.com"
            assert await db.scalar(sa.select(Need.__table__.c.description)) == "ask Zhou"
            changes = await db.scalar(sa.select(HistoryEntry.__table__.c.changes))
            assert changes == {"email": {"old": None, "new": "chen.jie@example.com"}}
    finally:
        if engine is not None:
            await engine.dispose()
        admin = make_url(plain).set(database="postgres").render_as_string(hide_password=False)
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
