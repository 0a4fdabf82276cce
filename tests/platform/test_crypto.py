"""PII encryption: AES-GCM with key ids, rotation, blind indexes, production refusal."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from shared import crypto
from shared.db import create_engine
from tests.conftest import settings_for


def key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ring(keys: str, index: str | None = None) -> crypto.Keyring:
    environ = {"KEHU_ENCRYPTION_KEYS": keys, "KEHU_BLIND_INDEX_KEY": index or key()}
    return crypto.load_keyring("production", Path("unused"), environ)


def test_seal_and_open_round_trip_and_bind_the_column() -> None:
    keyring = ring(f"k1:{key()}")
    token = keyring.seal("alice@example.com", "customers.email")
    assert token.startswith("k1.k1.") and "alice" not in token
    assert keyring.open(token, "customers.email") == "alice@example.com"
    with pytest.raises(InvalidTag):
        keyring.open(token, "customers.phone")
    assert keyring.seal("x", "c") != keyring.seal("x", "c"), "nonces must differ"


def test_old_keys_still_decrypt_after_rotation() -> None:
    old, new = key(), key()
    before = ring(f"old:{old}")
    token = before.seal("+8613800138000", "customers.phone")
    after = ring(f"new:{new},old:{old}")
    assert after.active == "new"
    assert after.open(token, "customers.phone") == "+8613800138000"
    assert after.key_id(after.seal("x", "c")) == "new"


def test_blind_index_is_stable_keyed_and_purpose_bound() -> None:
    index = key()
    a, b = ring(f"k:{key()}", index), ring(f"k:{key()}", index)
    assert a.blind_index("a@x.io", "email") == b.blind_index("a@x.io", "email")
    assert a.blind_index("a@x.io", "email") != a.blind_index("a@x.io", "phone")
    assert ring(f"k:{key()}").blind_index("a@x.io", "email") != a.blind_index("a@x.io", "email")


def test_production_refuses_missing_keys_and_dev_generates_them(tmp_path: Path) -> None:
    with pytest.raises(crypto.KeyringError):
        crypto.load_keyring("production", tmp_path, {})
    dev = crypto.load_keyring("dev", tmp_path, {})
    again = crypto.load_keyring("dev", tmp_path, {})
    assert dev.keys == again.keys and dev.active == "dev1"


def test_masks() -> None:
    assert crypto.mask_email("alice@example.com") == "a***@example.com"
    assert crypto.mask_phone("+8613800138000") == "+86*******8000"


async def test_reencrypt_moves_every_value_to_the_newest_key(fresh_database: Any) -> None:
    url = await fresh_database("analytics")
    engine = create_engine(settings_for(url))
    metadata = sa.MetaData()
    table = sa.Table(
        "people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", crypto.EncryptedText("people.email")),
    )
    old, new = key(), key()
    previous = crypto._keyring
    try:
        crypto.configure(ring(f"old:{old}"))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                sa.insert(table), [{"id": i, "email": f"p{i}@x.io"} for i in range(5)]
            )
            raw = await conn.scalar(sa.text("SELECT email FROM people WHERE id = 1"))
        assert raw.startswith("k1.old.") and "p1@x.io" not in raw

        crypto.configure(ring(f"new:{new},old:{old}"))
        assert await crypto.reencrypt(engine, metadata) == 5
        async with engine.connect() as conn:
            raws = (await conn.execute(sa.text("SELECT email FROM people"))).scalars().all()
            emails = (await conn.execute(sa.select(table.c.email).order_by(table.c.id))).scalars()
            assert list(emails) == [f"p{i}@x.io" for i in range(5)]
        assert all(r.startswith("k1.new.") for r in raws)
        crypto.configure(ring(f"new:{new}"))  # the old key can now be retired
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(table.c.email).where(table.c.id == 3)) == "p3@x.io"
    finally:
        crypto._keyring = previous
        await engine.dispose()
