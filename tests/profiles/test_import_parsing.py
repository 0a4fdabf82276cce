"""Parsing an import body: what cannot be parsed is a 422 naming the problem, or a row error.

Pure: `parse_import` needs no stack.
"""

from __future__ import annotations

import sys

import pytest

from services.profiles.service import parse_import
from shared.problems import ProblemError

HUGE = "9" * 5000
DIGITS = f"more than {sys.get_int_max_str_digits()} digits"
JSON, NDJSON, CSV = "application/json", "application/x-ndjson", "text/csv"


@pytest.mark.parametrize(
    ("body", "media", "named"),
    [
        (b"", JSON, "empty"),
        (b"", CSV, "empty"),
        (b" \n", NDJSON, "empty"),
        (b"[{", JSON, "not valid JSON"),
        (f'[{{"x": {HUGE}}}]'.encode(), JSON, DIGITS),
        (b"[" * 100_000, JSON, "too deeply"),
        (b"\xff\xfe", CSV, "UTF-8"),
        (b"external_ref\n" + b"x" * 200_000 + b"\n", CSV, "The CSV is malformed"),
    ],
    ids=["empty-json", "empty-csv", "blank-ndjson", "malformed", "huge", "deep", "latin", "field"],
)
def test_an_unparseable_import_is_a_422_naming_the_problem(
    body: bytes, media: str, named: str
) -> None:
    with pytest.raises(ProblemError) as raised:
        parse_import(body, media, 100)
    assert raised.value.status == 422
    assert named in (raised.value.detail or "")


def test_a_bad_json_line_is_a_row_error_and_the_other_lines_are_rows() -> None:
    body = f'{{"external_ref": "a"}}\n{{"x": {HUGE}}}\n{{\n'.encode()
    rows = parse_import(body, NDJSON, 100)
    assert rows[0] == {"external_ref": "a"}
    assert rows[1] == f"The line holds a number with {DIGITS}"
    assert isinstance(rows[2], str) and rows[2].startswith("The line is not valid JSON")


def test_a_csv_json_column_that_does_not_parse_is_left_for_validation() -> None:
    body = f'external_ref,display_name,custom_attributes\nr1,Ann,"{{""n"": {HUGE}}}"\n'.encode()
    [row] = parse_import(body, CSV, 100)
    assert isinstance(row, dict)
    assert row["custom_attributes"] == f'{{"n": {HUGE}}}'
