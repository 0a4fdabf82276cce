"""SLA clocks: deadlines, pauses and the optional business-hours calendar.

SLA time is wall-clock time, or only the time inside business hours when the calendar is on.
A complaint stores the SLA seconds its clock was stopped (`paused_seconds`); its deadlines are
`received_at + target + paused_seconds` in SLA time, so a pause moves them out by its length.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.complaints.config import Settings

# A calendar that never opens would make deadlines unreachable; stop searching after this.
MAX_CALENDAR_DAYS = 3660


class SlaClock:
    def __init__(self, settings: Settings) -> None:
        self.business = settings.business_hours_enabled and bool(settings.business_weekdays)
        self.tz = ZoneInfo(settings.business_timezone)
        self.start_hour = settings.business_day_start_hour
        self.end_hour = settings.business_day_end_hour
        self.weekdays = set(settings.business_weekdays)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.weekdays or self.end_hour <= self.start_hour:
            return None
        start = datetime.combine(day, time(self.start_hour), self.tz)
        end = datetime.combine(day, time(0), self.tz) + timedelta(hours=self.end_hour)
        return start, end

    def elapsed(self, start: datetime, end: datetime) -> float:
        """SLA seconds between two instants (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        if not self.business:
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
        if not self.business:
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
