"""SLA clocks: deadlines, pauses, business calendars and holidays.

SLA time is wall-clock time, or only the time inside business hours when a business calendar
is on (the service's, from settings, or an SLA policy's). Holidays (`PUT /holidays/{day}`) are
not counted by a business calendar, nor by a round-the-clock one that says `skip_holidays`.
A case stores the SLA seconds its clock was stopped (`paused_seconds`); its deadlines are
`received_at + target + paused_seconds` in SLA time, so a pause moves them out by its length.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.complaints.config import Settings

# A calendar that never opens would make deadlines unreachable; stop searching after this.
MAX_CALENDAR_DAYS = 3660


class SlaClock:
    """SLA time of one calendar: the service's (settings) unless `calendar` (an SLA policy's,
    see `schemas.Calendar`) is given; `holidays` are days a business calendar skips."""

    def __init__(
        self,
        settings: Settings,
        calendar: dict[str, Any] | None = None,
        holidays: Collection[date] = (),
    ) -> None:
        if calendar is None:
            business = settings.business_hours_enabled
            tz = settings.business_timezone
            start_hour, end_hour = settings.business_day_start_hour, settings.business_day_end_hour
            weekdays = settings.business_weekdays
            skip_holidays = business
        else:
            business = bool(calendar.get("business_hours"))
            tz = calendar.get("timezone", "UTC")
            start_hour = calendar.get("day_start_hour", 9)
            end_hour = calendar.get("day_end_hour", 17)
            weekdays = calendar.get("weekdays", [0, 1, 2, 3, 4])
            skip_holidays = business or bool(calendar.get("skip_holidays"))
        self.business = business and bool(weekdays)
        self.tz = ZoneInfo(tz)
        self.start_hour, self.end_hour = (start_hour, end_hour) if self.business else (0, 24)
        self.weekdays = set(weekdays) if self.business else set(range(7))
        self.holidays = frozenset(holidays) if skip_holidays else frozenset()
        # Only a plain round-the-clock calendar can skip the day-by-day walk.
        self.calendar_time = self.business or bool(self.holidays)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.weekdays or self.end_hour <= self.start_hour:
            return None
        if day in self.holidays:
            return None
        start = datetime.combine(day, time(self.start_hour), self.tz)
        end = datetime.combine(day, time(0), self.tz) + timedelta(hours=self.end_hour)
        return start, end

    def elapsed(self, start: datetime, end: datetime) -> float:
        """SLA seconds between two instants (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        if not self.calendar_time:
            return (end - start).total_seconds()
        total = 0.0
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            window = self._window(day)
            if window is not None:
                lo, hi = max(window[0], start), min(window[1], end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant `seconds` of SLA time after `start`."""
        if not self.calendar_time:
            return start + timedelta(seconds=seconds)
        remaining = max(seconds, 0.0)
        day = start.astimezone(self.tz).date()
        for _ in range(MAX_CALENDAR_DAYS):
            window = self._window(day)
            if window is not None and window[1] > start:
                lo = max(window[0], start)
                available = (window[1] - lo).total_seconds()
                if remaining <= available:
                    return lo + timedelta(seconds=remaining)
                remaining -= available
            day += timedelta(days=1)
        return start + timedelta(seconds=seconds)
