"""The loyalty programme's arithmetic (services.loyalty.rules), without the stack."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from services.loyalty.rules import (
    Level,
    birthday_bonus_due,
    birthday_on,
    birthdays_falling_on,
    evaluate,
    expires_at,
    points_for,
    qualifying_level,
    reversal_target,
)

LEVELS = [
    Level("member", "Member", 0, Decimal("1")),
    Level("silver", "Silver", 2000, Decimal("1.25")),
    Level("gold", "Gold", 10000, Decimal("1.5")),
]


def test_points_are_floored_never_rounded_up() -> None:
    assert points_for(Decimal("1234.99"), Decimal("1"), Decimal("1")) == 1234
    assert points_for(Decimal("99.99"), Decimal("1"), Decimal("1.25")) == 124  # 124.9875
    assert points_for(Decimal("0.50"), Decimal("1"), Decimal("1")) == 0


def test_lots_expire_at_the_end_of_the_month_n_months_after_earning() -> None:
    assert expires_at(datetime(2026, 3, 15, 10, tzinfo=UTC), 12) == datetime(2027, 4, 1, tzinfo=UTC)
    assert expires_at(datetime(2026, 12, 31, 23, tzinfo=UTC), 1) == datetime(2027, 2, 1, tzinfo=UTC)
    assert expires_at(datetime(2026, 1, 1, tzinfo=UTC), 11) == datetime(2027, 1, 1, tzinfo=UTC)


def test_partial_refunds_adding_up_to_the_whole_reverse_every_point() -> None:
    total = Decimal("300.00")
    steps = [reversal_target(100, total * k / 3, total) for k in (1, 2, 3)]
    assert steps == [33, 66, 100]
    assert reversal_target(100, Decimal("500"), total) == 100


def test_levels_go_up_at_once_and_down_one_step_at_a_time() -> None:
    assert qualifying_level(LEVELS, 1999) == LEVELS[0]
    assert qualifying_level(LEVELS, 2000) == LEVELS[1]
    assert evaluate(LEVELS, "member", 12000) == LEVELS[2]  # up: straight to the target
    assert evaluate(LEVELS, "gold", 0) == LEVELS[1]  # down: one level
    assert evaluate(LEVELS, "silver", 0) == LEVELS[0]
    assert evaluate(LEVELS, "gone", 2500) == LEVELS[1]  # a level no longer defined


def test_birthdays_on_29_february_fall_on_the_28th_in_common_years() -> None:
    assert birthday_on(2, 29, 2027) == date(2027, 2, 28)
    assert birthdays_falling_on(date(2027, 2, 28)) == ["02-28", "02-29"]
    assert birthdays_falling_on(date(2028, 2, 28)) == ["02-28"]


def test_a_birthday_entered_less_than_30_days_before_earns_nothing() -> None:
    birthday = date(2030, 6, 10)
    assert birthday_bonus_due(datetime(2030, 5, 11, tzinfo=UTC), birthday, 30)
    assert not birthday_bonus_due(datetime(2030, 5, 11, 0, 1, tzinfo=UTC), birthday, 30)
