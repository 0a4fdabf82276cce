"""Keyset paging, written once: an ordered query, an opaque cursor, the next page's cursor.

    ORDER = Keyset(SortKey(Complaint.created_at, "created_at", descending=True, parse=parse_dt),
                   SortKey(Complaint.id, "id", parse=uuid.UUID))
    query = ORDER.apply(sa.select(Complaint).where(...), cursor, limit)
    rows = (await session.scalars(query)).all()
    items, next_cursor = ORDER.page(rows, limit)

The last key must be unique (an id), so every row has exactly one position. The cursor is the
sort values of the page's last row, base64-encoded JSON (`shared.pagination`); a cursor this
API did not issue is a 400 `invalid-cursor`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

T = TypeVar("T")


def _same(value: Any) -> Any:
    return value


def parse_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class SortKey:
    column: Any
    name: str
    descending: bool = False
    parse: Callable[[Any], Any] = _same

    def order(self) -> Any:
        return self.column.desc() if self.descending else self.column.asc()

    def after(self, value: Any) -> Any:
        return self.column < value if self.descending else self.column > value


class Keyset:
    def __init__(self, *keys: SortKey) -> None:
        if not keys:
            raise ValueError("a keyset needs at least one (unique) sort key")
        self.keys = keys

    def position(self, cursor: str | None) -> list[Any] | None:
        values = decode_cursor(cursor)
        if values is None:
            return None
        try:
            return [key.parse(values[key.name]) for key in self.keys]
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise InvalidCursor("The cursor is not one this API issued for this order") from exc

    def apply(self, query: Any, cursor: str | None, limit: int) -> Any:
        """`query` ordered by the keys, after the cursor's row, one row more than `limit`."""
        query = query.order_by(*(key.order() for key in self.keys)).limit(limit + 1)
        position = self.position(cursor)
        if position is None:
            return query
        # (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...: correct for mixed directions.
        clauses = []
        for i, key in enumerate(self.keys):
            equal = [k.column == v for k, v in zip(self.keys[:i], position[:i], strict=True)]
            clauses.append(sa.and_(*equal, key.after(position[i])))
        return query.where(sa.or_(*clauses))

    def page(
        self,
        rows: Sequence[T],
        limit: int,
        value: Callable[[T, str], Any] = getattr,
    ) -> tuple[list[T], str | None]:
        """The page's rows and the cursor of the next page (None on the last page)."""
        items = list(rows[:limit])
        if len(rows) <= limit or not items:
            return items, None
        last = items[-1]
        return items, encode_cursor({key.name: value(last, key.name) for key in self.keys})
