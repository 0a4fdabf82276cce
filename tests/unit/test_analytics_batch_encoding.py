"""The analytics drain hands PostgreSQL its rows and ids as text: what that text says."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

from services.analytics.projection import uuid_array_text
from shared.db import rows_json


def test_rows_json_keeps_decimals_exact_and_writes_uuids_and_times_as_text() -> None:
    purchase_id = uuid.uuid4()
    survivor = AsyncpgUUID(str(uuid.uuid4()))  # as asyncpg returns ids read back
    at = datetime(2026, 11, 30, 10, 0, 0, 123456, tzinfo=UTC)
    row = {
        "purchase_id": purchase_id,
        "customer_id": survivor,
        "amount": Decimal("1250.1000"),
        "margin": Decimal("1E+2"),
        "reporting_amount": None,
        "occurred_at": at,
        "cancelled": False,
    }

    [decoded] = json.loads(rows_json([row]))

    assert decoded == {
        "purchase_id": str(purchase_id),
        "customer_id": str(survivor),
        "amount": "1250.1000",
        "margin": "1E+2",
        "reporting_amount": None,
        "occurred_at": "2026-11-30T10:00:00.123456+00:00",
        "cancelled": False,
    }


def test_rows_json_reads_a_naive_time_as_utc_like_asyncpg() -> None:
    [decoded] = json.loads(rows_json([{"occurred_at": datetime(2026, 11, 30, 10, 0)}]))
    assert decoded["occurred_at"] == "2026-11-30T10:00:00+00:00"


def test_uuid_array_text_is_a_postgresql_array_literal() -> None:
    a, b = uuid.uuid4(), AsyncpgUUID(str(uuid.uuid4()))
    assert uuid_array_text([a, b]) == "{" + f"{a},{b}" + "}"
    assert uuid_array_text([]) == "{}"
