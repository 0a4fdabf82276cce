"""Opaque page cursors: what the API issues it reads back; anything else is a 400 problem."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from shared.pagination import InvalidCursor, decode_cursor, encode_cursor


def test_a_cursor_round_trips_and_is_url_safe_without_padding() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    cursor = encode_cursor({"created_at": at, "id": "0b6f", "n": 7})
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    # Values JSON cannot hold come back as their string form (the repositories parse them).
    assert decode_cursor(cursor) == {"created_at": str(at), "id": "0b6f", "n": 7}


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",  # not base64
        base64.urlsafe_b64encode(b"{broken json").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),  # JSON, but not an object
        base64.urlsafe_b64encode(b'"text"').decode(),
    ],
)
def test_a_cursor_this_api_did_not_issue_is_a_400(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor(cursor)
    assert refused.value.status == 400 and refused.value.slug == "invalid-cursor"
