"""JSON text between the services and PostgreSQL: what is read back, and the audit entries."""

from __future__ import annotations

import json
import uuid

import pytest
from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

from shared.audit import audit_json
from shared.db import json_loads


def test_json_loads_reads_what_orjson_refuses() -> None:
    assert json_loads('{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}
    assert json_loads(b'{"n": 18446744073709551616}') == {"n": 2**64}
    with pytest.raises(ValueError):
        json_loads("{not json")


def test_audit_json_writes_ids_of_any_uuid_class_as_text() -> None:
    survivor = AsyncpgUUID(str(uuid.uuid4()))
    plain_id = uuid.uuid4()
    entries = [{"resource_id": survivor, "customer_id": plain_id, "fields": ["email"]}]
    assert json.loads(audit_json(entries)) == [
        {"resource_id": str(survivor), "customer_id": str(plain_id), "fields": ["email"]}
    ]
