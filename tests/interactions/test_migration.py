"""Revision 0004 encrypts the personal text of rows written before it; downgrade decrypts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import command

from services.interactions.models import Followup, Interaction
from shared.db import create_engine
from shared.migrate import alembic_config
from tests.conftest import settings_for


async def test_existing_rows_are_encrypted_by_the_migration_and_decrypted_by_downgrade(
    fresh_database: Any,
) -> None:
    url = await fresh_database("interactions")
    config = alembic_config("interactions", url)
    await asyncio.to_thread(command.downgrade, config, "0003")
    engine = create_engine(settings_for(url))
    interaction, followup, customer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO interactions (id, customer_id, channel, direction, occurred_at,"
                    " contact_person, subject, summary) VALUES (:id, :c, 'phone', 'inbound',"
                    " now(), 'Old Name', 'Old subject', NULL)"
                ),
                {"id": interaction, "c": customer},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO followups (id, customer_id, kind, due_at, status, origin, note)"
                    " VALUES (:id, :c, 'call', now(), 'open', 'manual', 'Old note')"
                ),
                {"id": followup, "c": customer},
            )
        await asyncio.to_thread(command.upgrade, config, "head")

        async with engine.connect() as conn:
            raw = (
                await conn.execute(
                    sa.text("SELECT contact_person, subject, summary FROM interactions")
                )
            ).one()
            assert raw[0].startswith("k1.") and raw[1].startswith("k1.") and raw[2] is None
            assert "Old" not in raw[0] + raw[1]
            read = (
                await conn.execute(sa.select(Interaction.contact_person, Interaction.subject))
            ).one()
            assert tuple(read) == ("Old Name", "Old subject")
            assert await conn.scalar(sa.select(Followup.note)) == "Old note"
            assert await conn.scalar(sa.text("SELECT count(*) FROM audit_log")) == 0

        await asyncio.to_thread(command.downgrade, config, "0003")
        async with engine.connect() as conn:
            plain = await conn.scalar(sa.text("SELECT note FROM followups"))
            assert plain == "Old note"
    finally:
        await engine.dispose()
