"""Revision 0005 encrypts the personal data of rows written before it; downgrade decrypts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import command

from services.complaints.models import Complaint, Note
from shared.db import create_engine
from shared.migrate import alembic_config
from tests.conftest import settings_for


async def test_existing_rows_are_encrypted_by_the_migration_and_decrypted_by_downgrade(
    fresh_database: Any,
) -> None:
    url = await fresh_database("complaints")
    config = alembic_config("complaints", url)
    await asyncio.to_thread(command.downgrade, config, "0004")
    engine = create_engine(settings_for(url))
    complaint = uuid.uuid4()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO complaints (id, customer_id, channel, category, severity, status,"
                    " tier, received_at, first_response_target_s, resolution_target_s,"
                    " first_response_due_at, first_response_warn_at, resolution_due_at,"
                    " resolution_warn_at, complainant_email, description) VALUES (:id, :c,"
                    " 'email', 'delivery', 'low', 'received', 'C', now(), 60, 600, now(), now(),"
                    " now(), now(), 'old@example.com', 'Old description')"
                ),
                {"id": complaint, "c": uuid.uuid4()},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO complaint_notes (id, complaint_id, author, body, created_at)"
                    " VALUES (:id, :c, 'agent', 'Old note', now())"
                ),
                {"id": uuid.uuid4(), "c": complaint},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO complaint_transitions (complaint_id, to_status, note, at)"
                    " VALUES (:c, 'received', 'Old transition', now())"
                ),
                {"c": complaint},
            )
        await asyncio.to_thread(command.upgrade, config, "head")

        async with engine.connect() as conn:
            raw = (
                await conn.execute(sa.text("SELECT complainant_email, description FROM complaints"))
            ).one()
            assert all(v.startswith("k1.") and "old" not in v.lower() for v in raw)
            transition = await conn.scalar(sa.text("SELECT note FROM complaint_transitions"))
            assert transition.startswith("k1.")
            read = (
                await conn.execute(sa.select(Complaint.complainant_email, Complaint.description))
            ).one()
            assert tuple(read) == ("old@example.com", "Old description")
            assert await conn.scalar(sa.select(Note.body)) == "Old note"

        await asyncio.to_thread(command.downgrade, config, "0004")
        async with engine.connect() as conn:
            plain = await conn.scalar(sa.text("SELECT complainant_email FROM complaints"))
            assert plain == "old@example.com"
    finally:
        await engine.dispose()
