"""Signed links in messages: the survey page (`/s/{token}`) and unsubscribing (`/u/{token}`).

A token is `<payload>.<signature>`: the payload base64url JSON, the signature HMAC-SHA256 of the
payload under the service's link key. The survey token names a stored link (single use, with an
expiry); the unsubscribe token names the customer and the consent purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class BadToken(ValueError):
    """The token was not issued by this service (or was altered)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, kind: str, claims: dict[str, Any]) -> str:
    payload = _b64(json.dumps({"k": kind, **claims}, separators=(",", ":")).encode())
    signature = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify(key: bytes, kind: str, token: str) -> dict[str, Any]:
    """The token's claims; BadToken unless it is a well-formed token of `kind` signed by `key`."""
    if len(token) > 2048 or token.count(".") != 1:
        raise BadToken("malformed")
    payload, signature = token.split(".")
    expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("malformed") from exc
    if not hmac.compare_digest(expected, given):
        raise BadToken("bad signature")
    if not isinstance(claims, dict) or claims.get("k") != kind:
        raise BadToken("wrong kind")
    return claims
