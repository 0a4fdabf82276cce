"""PII encryption: AES-GCM with key ids, rotation, blind indexes, production refusal, masks."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from shared import crypto


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


def test_open_reads_the_url_safe_alphabet_and_refuses_a_damaged_payload() -> None:
    keyring = ring(f"k1:{key()}")
    # Enough values that the payloads use both letters only the URL-safe alphabet has.
    tokens = {f"value {i} é": keyring.seal(f"value {i} é", "c") for i in range(200)}
    payloads = "".join(t.split(".", 2)[2] for t in tokens.values())
    assert "-" in payloads and "_" in payloads
    assert all(keyring.open(token, "c") == plain for plain, token in tokens.items())
    token = next(iter(tokens.values()))
    with pytest.raises(ValueError):  # not base64 (padding), as base64's own decoder said
        keyring.open(token[:-1], "c")
    with pytest.raises(ValueError):  # not ASCII
        keyring.open(token + "é", "c")
