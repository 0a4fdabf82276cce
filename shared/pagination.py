"""Opaque cursor pagination: a page of items and the cursor of the next page."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from shared.problems import ProblemError

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class InvalidCursor(ProblemError):
    status, slug, title = 400, "invalid-cursor", "Invalid cursor"


class Page(BaseModel, Generic[T]):
    """One page of results. Pass `next_cursor` as `cursor` to read the next page."""

    items: list[T]
    next_cursor: str | None = Field(
        None, description="Opaque cursor of the next page; null on the last page."
    )


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidCursor("The cursor is not one this API issued") from exc
    if not isinstance(value, dict):
        raise InvalidCursor("The cursor is not one this API issued")
    return value
