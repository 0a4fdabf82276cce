"""Revision 0006 turns the complaints into complaint-type cases: each keeps its data and gets
its type, a human reference in order of receipt per year (the counters continue from there)
and the default SLA policy of its severity and tier; downgrade goes back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from shared.db import create_engine
from shared.migrate import alembic_config
from tests.conftest import settings_for

INSERT = (
    "INSERT INTO complaints (id, customer_id, channel, category, severity, status, tier,"
    " received_at, first_response_target_s, resolution_target_s, first_response_due_at,"
    " first_response_warn_at, resolution_due_at, resolution_warn_at, escalation_level)"
    " VALUES (:id, :c, 'email', 'delivery', :severity, 'received', :tier, :at, 60, 600,"
    " now(), now(), now(), now(), :level)"
)


async def test_existing_complaints_become_complaint_cases_with_references(
    fresh_database: Any,
) -> None:
    url = await fresh_database("complaints")
    config = alembic_config("complaints", url)
    await asyncio.to_thread(command.downgrade, config, "0005")
    engine = create_engine(settings_for(url))
    rows = [
        ("2025-12-31T10:00:00Z", "low", "A", 0),
        ("2026-01-02T10:00:00Z", "critical", "C", 2),
        ("2026-01-01T10:00:00Z", "high", "B", 0),
    ]
    ids = [uuid.uuid4() for _ in rows]
    try:
        async with engine.begin() as conn:
            for id_, (at, severity, tier, level) in zip(ids, rows, strict=True):
                await conn.execute(
                    sa.text(INSERT),
                    {
                        "id": id_,
                        "c": uuid.uuid4(),
                        "severity": severity,
                        "tier": tier,
                        "at": datetime.fromisoformat(at),
                        "level": level,
                    },
                )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            found = {
                r.id: r
                for r in await conn.execute(
                    sa.text(
                        "SELECT id, type, reference, sla_policy, critical_escalated, tier"
                        " FROM complaints"
                    )
                )
            }
            counters = dict(
                (await conn.execute(sa.text("SELECT year, last FROM reference_counters"))).all()
            )
        assert [found[i].type for i in ids] == ["complaint"] * 3
        assert [found[i].reference for i in ids] == [
            "CP-2025-000001",
            "CP-2026-000002",
            "CP-2026-000001",
        ]
        assert [found[i].sla_policy for i in ids] == [
            "default/low/A",
            "default/critical/C",
            "default/high/B",
        ]
        assert [found[i].critical_escalated for i in ids] == [False, True, False]
        assert counters == {2025: 1, 2026: 2}

        await asyncio.to_thread(command.downgrade, config, "0005")
        async with engine.connect() as conn:
            left = await conn.scalar(sa.text("SELECT count(*) FROM complaints"))
            columns = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM information_schema.columns"
                    " WHERE table_name = 'complaints' AND column_name = 'reference'"
                )
            )
        assert (left, columns) == (3, 0)
    finally:
        await engine.dispose()
