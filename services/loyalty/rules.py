"""The loyalty programme's arithmetic, as pure functions (unit-tested without the stack)."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal


@dataclass(frozen=True)
class Level:
    code: str
    name: str
    threshold: int  # points earned in the trailing window to qualify
    multiplier: Decimal


def points_for(amount: Decimal, points_per_unit: Decimal, multiplier: Decimal) -> int:
    """floor(amount x points per unit x multiplier); never negative."""
    points = (amount * points_per_unit * multiplier).to_integral_value(rounding=ROUND_FLOOR)
    return max(0, int(points))


def expires_at(earned_at: datetime, months: int) -> datetime:
    """The end of the month `months` after the month of `earned_at`: the first instant (UTC) of
    the month after that, exclusive. Earned 2026-03-15 with 12 months: 2027-04-01T00:00Z."""
    earned = earned_at.astimezone(UTC)
    index = earned.year * 12 + (earned.month - 1) + months + 1
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def reversal_target(points: int, refunded_total: Decimal, amount: Decimal) -> int:
    """How many of a purchase's `points` are reversed once `refunded_total` of its `amount` was
    refunded: cumulative and floored, so partial refunds adding up to the whole reverse all."""
    if amount <= 0 or refunded_total >= amount:
        return points
    share = Decimal(points) * refunded_total / amount
    return max(0, min(points, int(share.to_integral_value(rounding=ROUND_FLOOR))))


def ordered(levels: Sequence[Level]) -> list[Level]:
    return sorted(levels, key=lambda level: level.threshold)


def qualifying_level(levels: Sequence[Level], earned: int) -> Level | None:
    """The highest level whose threshold `earned` reaches (None below every threshold)."""
    reached = [level for level in ordered(levels) if level.threshold <= earned]
    return reached[-1] if reached else None


def rank_of(levels: Sequence[Level], code: str | None) -> int:
    """A level's position from the bottom (0); -1 for no level or one no longer defined."""
    for rank, level in enumerate(ordered(levels)):
        if level.code == code:
            return rank
    return -1


def evaluate(levels: Sequence[Level], current: str | None, earned: int) -> Level | None:
    """The monthly evaluation: up to the qualifying level at once, down by one level at most."""
    target = qualifying_level(levels, earned)
    target_rank = rank_of(levels, target.code if target else None)
    current_rank = rank_of(levels, current)
    if current_rank < 0 or target_rank >= current_rank:
        return target
    return ordered(levels)[current_rank - 1]


def month_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def month_day(month: int, day: int) -> str:
    return f"{month:02d}-{day:02d}"


def birthday_on(month: int, day: int, year: int) -> date:
    """The birthday's date in `year`; 29 February falls on the 28th in other years."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day, last))


def birthdays_falling_on(day: date) -> list[str]:
    """The month-day keys celebrated on `day` (28 Feb of a common year also holds 29 Feb)."""
    keys = [month_day(day.month, day.day)]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        keys.append(month_day(2, 29))
    return keys


def birthday_bonus_due(entered_at: datetime, birthday: date, min_known_days: int) -> bool:
    """A date entered less than `min_known_days` before the birthday earns nothing this year."""
    start = datetime(birthday.year, birthday.month, birthday.day, tzinfo=UTC)
    return entered_at <= start - timedelta(days=min_known_days)
