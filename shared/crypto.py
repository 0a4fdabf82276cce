"""Application-side encryption of PII at rest, with key ids for rotation, and blind indexes.

Values are sealed with AES-256-GCM as `k1.<kid>.<base64(nonce|ciphertext)>`; the column's name is
bound in as associated data, so a ciphertext copied into another column does not decrypt. The
newest key encrypts; every configured key decrypts, so keys rotate without downtime (`python -m
shared.crypto reencrypt <service>` rewrites old ciphertexts under the newest key). Exact lookups
and duplicate checks use a keyed blind index (HMAC-SHA256 of the normalised value).

Keys: `KEHU_ENCRYPTION_KEYS="kid:base64key[,kid:base64key...]"` (newest first) or a file named by
`KEHU_ENCRYPTION_KEYS_FILE`; `KEHU_BLIND_INDEX_KEY`. A generated dev keyring is used in dev and
test; production refuses to start without real keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from shared.settings import create_once

PREFIX = "k1"
# The URL-safe base64 alphabet's two letters back to the standard one, for `binascii`
# (`base64.urlsafe_b64decode` does the same through three Python calls per value).
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


class KeyringError(RuntimeError):
    pass


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]  # kid -> 32-byte key; insertion order: newest first
    active: str
    index_key: bytes
    # Built once per keyring, not per value: the AES-GCM object of each key, the HMAC state
    # keyed with the index key (copied per use), and each column's context as bytes.
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)
    _index_mac: Any = field(init=False, repr=False, compare=False)
    _contexts: dict[str, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", {kid: AESGCM(key) for kid, key in self.keys.items()})
        object.__setattr__(self, "_index_mac", hmac.new(self.index_key, digestmod=hashlib.sha256))
        object.__setattr__(self, "_contexts", {})

    def _context(self, context: str) -> bytes:
        encoded = self._contexts.get(context)
        if encoded is None:
            encoded = self._contexts[context] = context.encode()
        return encoded

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead[self.active].encrypt(nonce, plaintext.encode(), self._context(context))
        return f"{PREFIX}.{self.active}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, context: str) -> str:
        try:
            prefix, kid, payload = token.split(".", 2)
        except ValueError:
            raise KeyringError("not a Kehu ciphertext") from None
        aead = self._aead.get(kid)
        if prefix != PREFIX or aead is None:
            raise KeyringError(f"unknown key id {kid!r}")
        raw = binascii.a2b_base64(payload.encode("ascii").translate(_FROM_URLSAFE))
        return aead.decrypt(raw[:12], raw[12:], self._context(context)).decode()

    def key_id(self, token: str) -> str:
        return token.split(".", 2)[1]

    def blind_index(self, value: str, purpose: str) -> str:
        digest = self._index_mac.copy()
        digest.update(f"{purpose}\0{value}".encode())
        return str(digest.hexdigest()[:40])


def _parse_keys(raw: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.replace("\n", ",").split(","))):
        kid, _, encoded = part.partition(":")
        key = base64.b64decode(encoded)
        if len(key) != 32 or not kid.isalnum():
            raise KeyringError(f"key {kid!r}: need an alphanumeric id and 32 base64 bytes")
        keys[kid] = key
    return keys


def _new_dev_keyring() -> str:
    return json.dumps(
        {
            "keys": f"dev1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
            "index": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )


def _dev_keyring(state_dir: Path) -> dict[str, str]:
    """The generated dev keyring; concurrent first starts agree on one (see `create_once`)."""
    data: dict[str, str] = json.loads(
        create_once(state_dir / "dev-encryption-keys.json", _new_dev_keyring)
    )
    return data


def load_keyring(env: str, state_dir: Path, environ: dict[str, str] | None = None) -> Keyring:
    environ = dict(os.environ if environ is None else environ)
    raw = environ.get("KEHU_ENCRYPTION_KEYS")
    if not raw and environ.get("KEHU_ENCRYPTION_KEYS_FILE"):
        raw = Path(environ["KEHU_ENCRYPTION_KEYS_FILE"]).read_text()
    index = environ.get("KEHU_BLIND_INDEX_KEY")
    if not raw or not index:
        if env == "production":
            raise KeyringError(
                "KEHU_ENCRYPTION_KEYS (or _FILE) and KEHU_BLIND_INDEX_KEY must be set in production"
            )
        dev = _dev_keyring(state_dir)
        raw, index = raw or dev["keys"], index or dev["index"]
    keys = _parse_keys(raw)
    if not keys:
        raise KeyringError("no encryption keys configured")
    return Keyring(keys=keys, active=next(iter(keys)), index_key=base64.b64decode(index))


_keyring: Keyring | None = None


def configure(keyring: Keyring) -> None:
    """Install the process keyring (done by each service at start-up)."""
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    global _keyring
    if _keyring is None:
        from shared.settings import ServiceSettings

        settings = ServiceSettings()
        _keyring = load_keyring(settings.env, settings.state_dir)
    return _keyring


class EncryptedText(TypeDecorator[str]):
    """A text column stored as AES-GCM ciphertext; `context` binds it to its column."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().seal(value, self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else keyring().open(value, self.context)


def blind_index(value: str | None, purpose: str) -> str | None:
    return None if value is None else keyring().blind_index(value, purpose)


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None if email is None else "***"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "***"


def mask_text(text: str | None) -> str | None:
    return None if text is None else "***"


async def reencrypt(engine: Any, metadata: Any, batch: int = 500) -> int:
    """Rewrite every ciphertext not under the newest key; returns how many values changed."""
    import sqlalchemy as sa

    ring = keyring()
    changed = 0
    for table in metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, EncryptedText)]
        pk = list(table.primary_key.columns)
        if not columns or not pk:
            continue
        raw = [sa.type_coerce(c, Text).label(c.name) for c in columns]
        async with engine.begin() as conn:
            rows = (await conn.execute(sa.select(*pk, *raw))).all()
            for row in rows:
                values: dict[str, str] = {}
                for column in columns:
                    token = getattr(row, column.name)
                    if token is not None and ring.key_id(token) != ring.active:
                        context = column.type.context
                        values[column.name] = ring.seal(ring.open(token, context), context)
                if values:
                    await conn.execute(
                        sa.update(table)
                        .where(*(c == getattr(row, c.name) for c in pk))
                        .values({sa.type_coerce(table.c[k], Text): v for k, v in values.items()})
                    )
                    changed += len(values)
    return changed


def main() -> None:
    """`python -m shared.crypto reencrypt SERVICE` or `python -m shared.crypto newkey KID`."""
    import asyncio
    import importlib
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "newkey":
        print(f"{sys.argv[2]}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
        return
    if len(sys.argv) != 3 or sys.argv[1] != "reencrypt":
        raise SystemExit("usage: python -m shared.crypto reencrypt SERVICE | newkey KID")
    service = sys.argv[2]
    settings = importlib.import_module(f"services.{service}.config").Settings()
    metadata = importlib.import_module(f"services.{service}.models").metadata

    async def run() -> int:
        from shared.db import create_engine

        engine = create_engine(settings)
        try:
            return await reencrypt(engine, metadata)
        finally:
            await engine.dispose()

    print(f"{service}: re-encrypted {asyncio.run(run())} values under key {keyring().active}")


if __name__ == "__main__":
    main()
