"""The timeline's batch fold: a batch's entries give the records one-by-one upserts would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.interactions.desk import Entry, fold

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CASE, CUSTOMER = uuid.uuid4(), uuid.uuid4()


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(minutes: int, data: dict[str, Any], received: bool = False) -> Entry:
    at = t(minutes) if received else None
    return Entry("case", CASE, CUSTOMER, at, data, t(minutes))


def test_a_new_record_merges_newer_entries_in_order_and_skips_older_ones() -> None:
    rows = fold(
        {},
        [
            entry(1, {"status": "received", "severity": "high"}, received=True),
            entry(3, {"status": "investigating"}),
            entry(2, {"status": "acknowledged"}),  # late: older than what is known
            entry(4, {"outcome": None}),
        ],
    )
    assert rows == [
        {
            "kind": "case",
            "id": CASE,
            "customer_id": CUSTOMER,
            "at": t(1),
            "at_known": True,
            "data": {"status": "investigating", "severity": "high", "outcome": None},
            "changed_at": t(4),
        }
    ]


def test_a_record_first_seen_without_its_place_in_time_is_placed_at_its_first_change() -> None:
    [row] = fold({}, [entry(5, {"status": "acknowledged"}), entry(6, {"status": "closed"})])
    assert (row["at"], row["at_known"], row["changed_at"]) == (t(5), False, t(6))
    # An older receipt arriving after it is ignored whole, its place in time too.
    [row] = fold({}, [entry(5, {"status": "acknowledged"}), entry(1, {}, received=True)])
    assert (row["at"], row["at_known"], row["data"]) == (t(5), False, {"status": "acknowledged"})


def test_a_stored_record_is_changed_only_by_newer_entries_and_keeps_its_place() -> None:
    stored = {
        ("case", CASE): {
            "kind": "case",
            "id": CASE,
            "customer_id": CUSTOMER,
            "at": t(1),
            "at_known": True,
            "data": {"status": "resolved", "outcome": "repaired"},
            "changed_at": t(10),
        }
    }
    assert fold(stored, [entry(9, {"status": "investigating"})]) == []  # nothing to write
    [row] = fold(stored, [entry(11, {"status": "closed"}), entry(8, {"status": "received"})])
    assert row["data"] == {"status": "closed", "outcome": "repaired"}
    assert (row["at"], row["changed_at"]) == (t(1), t(11))


def test_records_fold_independently() -> None:
    other = Entry("need", uuid.uuid4(), CUSTOMER, t(2), {"status": "open"}, t(2))
    rows = fold({}, [entry(3, {"status": "acknowledged"}), other, entry(1, {"status": "x"})])
    assert [(r["kind"], r["data"]["status"]) for r in rows] == [
        ("case", "acknowledged"),
        ("need", "open"),
    ]
