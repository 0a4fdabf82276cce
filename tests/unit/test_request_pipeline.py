"""The shared request pipeline's pure parts: clock, keyset paging, masking rules, sealed replies."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql

from shared import crypto
from shared.context import ManualClock
from shared.idempotency import Reply, seal, unseal
from shared.keyset import Keyset, SortKey, parse_datetime
from shared.pagination import InvalidCursor, decode_cursor
from shared.privacy import DROP, EMAIL, PERSON_NAME, PHONE, REDACT, REDACTED, Privacy
from shared.problems import Conflict


def ring(*kids: str) -> crypto.Keyring:
    keys = {kid: secrets.token_bytes(32) for kid in kids}
    return crypto.Keyring(keys=keys, active=kids[0], index_key=secrets.token_bytes(32))


@pytest.fixture
def keyring() -> crypto.Keyring:
    before = crypto._keyring
    installed = ring("k2", "k1")
    crypto.configure(installed)
    yield installed
    crypto._keyring = before


# -- clock ----------------------------------------------------------------------------------------


def test_a_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    assert clock.advance(minutes=90) == start + timedelta(minutes=90)
    clock.set(start)
    assert clock.now() == start


# -- keyset paging -------------------------------------------------------------------------------

table = sa.table("t", sa.column("created_at"), sa.column("id"))
ORDER = Keyset(
    SortKey(table.c.created_at, "created_at", descending=True, parse=parse_datetime),
    SortKey(table.c.id, "id", parse=uuid.UUID),
)


class Row(BaseModel):
    created_at: datetime
    id: uuid.UUID


def rows(n: int) -> list[Row]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [Row(created_at=at - timedelta(minutes=i), id=uuid.uuid4()) for i in range(n)]


def test_a_full_page_has_a_cursor_naming_its_last_row() -> None:
    found = rows(4)
    items, cursor = ORDER.page(found, 3)
    assert items == found[:3]
    assert decode_cursor(cursor) == {"created_at": str(found[2].created_at), "id": str(found[2].id)}


def test_the_last_page_has_no_cursor() -> None:
    assert ORDER.page(rows(3), 3)[1] is None
    assert ORDER.page([], 3) == ([], None)


def test_the_next_query_starts_strictly_after_the_cursor_row_in_sort_order() -> None:
    found = rows(4)
    _, cursor = ORDER.page(found, 3)
    sql = str(
        ORDER.apply(sa.select(table), cursor, 3).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    assert "t.created_at < '2025-12-31 23:58:00+00:00'" in sql
    assert f"t.created_at = '2025-12-31 23:58:00+00:00' AND t.id > '{found[2].id}'" in sql
    assert "ORDER BY t.created_at DESC, t.id ASC" in sql
    assert "LIMIT 4" in sql


@pytest.mark.parametrize("cursor", ["not-base64!", "e30", "eyJpZCI6IngifQ"])
def test_a_cursor_this_api_did_not_issue_is_a_400(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        ORDER.apply(sa.select(table), cursor, 3)


# -- masking rules -------------------------------------------------------------------------------


class Person(BaseModel):
    kind: str
    name: str | None
    email: str | None
    phone: str | None
    notes: str | None
    summary: str | None


SPEC = Privacy(
    None,
    {
        "person": {
            "name": PERSON_NAME,
            "email": EMAIL,
            "phone": PHONE,
            "notes": DROP,
            "summary": REDACT,
        }
    },
)


def test_masking_applies_each_declared_rule() -> None:
    person = Person(
        kind="person",
        name="Wang Fang",
        email="wang.fang@example.com",
        phone="+8613812345678",
        notes="likes tea",
        summary="called about a refund",
    )
    masked = SPEC.masked("person", person)
    assert masked.name == "W***"
    assert masked.email == crypto.mask_email("wang.fang@example.com") != person.email
    assert masked.phone == crypto.mask_phone("+8613812345678") != person.phone
    assert masked.notes is None
    assert masked.summary == REDACTED
    assert person.name == "Wang Fang"  # the original is left alone


def test_an_organisations_name_is_not_personal_data() -> None:
    org = Person(
        kind="organisation", name="Lianhua Ltd", email=None, phone=None, notes=None, summary=None
    )
    masked = SPEC.masked("person", org)
    assert masked.name == "Lianhua Ltd"
    assert masked.summary is None  # nothing to redact stays nothing


def test_masking_a_dict_keeps_its_other_keys_and_adds_none() -> None:
    masked = SPEC.masked("person", {"kind": "person", "name": "Li Lei", "id": 7})
    assert masked == {"kind": "person", "name": "L***", "id": 7}


# -- sealed idempotent replies -------------------------------------------------------------------


def test_a_stored_reply_is_sealed_with_only_ids_clear(keyring: crypto.Keyring) -> None:
    cid = str(uuid.uuid4())
    body = {"customer_id": cid, "secret": "whsec_abc", "email": "a@b.example"}
    stored = seal(body)
    assert "whsec_abc" not in str(stored) and "a@b.example" not in str(stored)
    assert stored["customer_id"] == cid and stored["ids"] == [cid]
    assert unseal(stored) == body


def test_a_reply_sealed_with_a_retired_key_is_a_409(keyring: crypto.Keyring) -> None:
    stored = seal({"customer_id": None, "x": 1})
    crypto.configure(ring("k3"))  # k2 retired
    with pytest.raises(Conflict) as err:
        unseal(stored)
    assert "retired key" in err.value.detail


def test_a_plain_stored_reply_is_never_replayed(keyring: crypto.Keyring) -> None:
    with pytest.raises(Conflict):
        unseal({"id": 1, "secret": "whsec_plain"})


def test_a_reply_renders_models_as_json() -> None:
    reply = Reply(
        Row(created_at=datetime(2026, 1, 1, tzinfo=UTC), id=uuid.UUID(int=1)),
        201,
        {"Location": "/rows/1"},
    )
    response = reply.response()
    assert response.status_code == 201
    assert response.headers["Location"] == "/rows/1"
    assert b'"2026-01-01T00:00:00Z"' in response.body
