"""Times from callers: converted to UTC, and a 422 (not a 500) when UTC cannot name them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from services.analytics.errors import InvalidPeriod
from services.analytics.reports import report_period
from shared.contracts.common import UtcDatetime, UtcInstant, in_utc

PLUS_8 = timezone(timedelta(hours=8))


class Body(BaseModel):
    at: UtcDatetime


class Filter(BaseModel):
    at: UtcInstant


def test_a_time_with_an_offset_becomes_the_same_instant_in_utc() -> None:
    local = datetime(2026, 12, 2, 9, 30, tzinfo=PLUS_8)
    assert in_utc(local) == local
    assert in_utc(local).tzinfo is UTC and in_utc(local).hour == 1
    assert Body(at=local).at.tzinfo is UTC


def test_a_time_without_an_offset_is_utc_for_filters_and_refused_in_bodies() -> None:
    naive = datetime(2026, 12, 2, 9, 30)
    assert Filter(at=naive).at == naive.replace(tzinfo=UTC)
    with pytest.raises(ValidationError) as refused:
        Body(at=naive)
    assert refused.value.errors()[0]["loc"] == ("at",)


@pytest.mark.parametrize("model", [Body, Filter])
@pytest.mark.parametrize("text", ["0001-01-01T19:59:56+22:02", "9999-12-31T23:00:00-05:00"])
def test_a_time_utc_cannot_name_is_a_validation_error_on_its_field(
    model: type[BaseModel], text: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({"at": text})
    (error,) = refused.value.errors()
    assert error["loc"] == ("at",)
    assert "out of range once converted to UTC" in error["msg"]


def test_report_periods_inside_the_calendar() -> None:
    previous, start, end = report_period("month", datetime(2026, 3, 15, tzinfo=PLUS_8))
    assert (previous, start, end) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    previous, start, end = report_period("week", datetime(2026, 12, 2, 12))  # a Wednesday
    assert (start.weekday(), (end - start).days, (start - previous).days) == (0, 7, 7)
    assert start == datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "at"),
    [
        ("week", datetime(1, 1, 1, tzinfo=UTC)),  # the week before year 1
        ("month", datetime(1, 1, 20, tzinfo=UTC)),
        ("week", datetime(9999, 12, 31, tzinfo=UTC)),  # the week's end is in year 10000
        ("month", datetime(9999, 12, 31, tzinfo=UTC)),
    ],
)
def test_report_periods_past_the_calendars_ends_are_invalid_periods(
    period: str, at: datetime
) -> None:
    with pytest.raises(InvalidPeriod) as refused:
        report_period(period, at)
    assert refused.value.extensions == {"at": at.isoformat()}


def test_an_unknown_period_is_named() -> None:
    with pytest.raises(InvalidPeriod, match="'year'"):
        report_period("year", datetime(2026, 1, 1, tzinfo=UTC))
