"""SLA time: wall-clock, or only business hours when the calendar is on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.complaints.config import Settings
from services.complaints.sla import SlaClock


def business_clock() -> SlaClock:
    return SlaClock(
        Settings(
            business_hours_enabled=True,
            business_timezone="Europe/Helsinki",
            business_day_start_hour=9,
            business_day_end_hour=17,
        )
    )


def helsinki(day: int, hour: int, minute: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Europe/Helsinki"))


def test_business_hours_clock_skips_nights_and_weekends() -> None:
    clock = business_clock()
    friday_4pm = helsinki(20, 16)  # 2026-11-20 is a Friday
    assert clock.add(friday_4pm, 2 * 3600) == helsinki(23, 10)  # Monday 10:00
    assert clock.elapsed(friday_4pm, helsinki(23, 10)) == 2 * 3600
    saturday = helsinki(21, 12)
    assert clock.add(saturday, 0) == helsinki(23, 9)
    assert clock.elapsed(saturday, helsinki(22, 23)) == 0


def test_without_the_calendar_sla_time_is_wall_clock_time() -> None:
    clock = SlaClock(Settings())
    start = helsinki(20, 16)
    assert clock.add(start, 2 * 3600) == helsinki(20, 18)
    assert clock.elapsed(start, helsinki(21, 16)) == 24 * 3600


def test_a_deadline_inside_one_business_day_stays_on_that_day() -> None:
    clock = business_clock()
    tuesday_10 = helsinki(24, 10)
    assert clock.add(tuesday_10, 90 * 60) == helsinki(24, 11, 30)
    assert clock.add(tuesday_10, 7 * 3600) == helsinki(24, 17)  # exactly at closing
    assert clock.add(tuesday_10, 7 * 3600 + 1) == helsinki(25, 9) + timedelta(seconds=1)


def test_time_before_opening_starts_counting_at_opening() -> None:
    clock = business_clock()
    early = helsinki(24, 6)  # Tuesday, before 09:00
    assert clock.add(early, 3600) == helsinki(24, 10)
    assert clock.elapsed(early, helsinki(24, 9, 30)) == 30 * 60


def test_elapsed_over_several_days_sums_only_the_open_windows() -> None:
    clock = business_clock()
    # Thursday 15:00 to Tuesday 11:00: Thu 2 h, Fri 8 h, Mon 8 h, Tue 2 h.
    assert clock.elapsed(helsinki(19, 15), helsinki(24, 11)) == 20 * 3600


def test_elapsed_is_zero_when_the_end_is_not_after_the_start() -> None:
    for clock in (business_clock(), SlaClock(Settings())):
        start = helsinki(24, 12)
        assert clock.elapsed(start, start) == 0
        assert clock.elapsed(start, helsinki(24, 11)) == 0


def test_a_paused_stretch_moves_the_deadline_out_by_its_sla_length() -> None:
    # deadline = received + target + paused, in SLA time (see services/complaints/sla.py)
    clock = business_clock()
    received = helsinki(20, 15)  # Friday
    paused = clock.elapsed(helsinki(20, 16), helsinki(23, 10))  # Fri 16:00 to Mon 10:00
    assert paused == 2 * 3600
    assert clock.add(received, 3600 + paused) == helsinki(23, 10)


def test_a_calendar_with_no_open_weekday_falls_back_to_wall_clock() -> None:
    closed = SlaClock(Settings(business_hours_enabled=True, business_weekdays=[]))
    start = datetime(2026, 11, 20, 16, tzinfo=UTC)
    assert closed.add(start, 3600) == start + timedelta(hours=1)
    inverted = SlaClock(
        Settings(business_hours_enabled=True, business_day_start_hour=17, business_day_end_hour=9)
    )
    # Never open: the search gives up after MAX_CALENDAR_DAYS and uses wall-clock time.
    assert inverted.add(start, 3600) == start + timedelta(hours=1)
