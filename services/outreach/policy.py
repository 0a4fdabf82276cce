"""The rules of reaching a customer, as pure functions: consent per channel, quiet hours in the
customer's time zone, the marketing frequency cap, retry back-off, locale and channel choice."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CHANNELS = ("email", "sms", "wechat")
LOCALES = ("zh-CN", "en")
# Marketing on a channel needs the customer's current consent for this purpose (profiles).
CONSENT_PURPOSE = {
    "email": "marketing_email",
    "sms": "marketing_sms",
    "wechat": "marketing_wechat",
}


def parse_clock(value: str) -> time:
    """`"21:00"` as a time of day; a 4xx-worthy ValueError for anything else."""
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


def zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's time zone, or the default one when unset or unknown."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    """Whether a local time of day falls in [start, end); the window may span midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours around `now` end (UTC), or None when it is not quiet now."""
    local = now.astimezone(tz)
    if not in_quiet_hours(local.timetz().replace(tzinfo=None), start, end):
        return None
    end_day = local.date()
    if local.time() >= end:  # before midnight in a window that spans it: ends tomorrow
        end_day = end_day + timedelta(days=1)
    wake = datetime.combine(end_day, end, tzinfo=tz)
    return wake.astimezone(now.tzinfo)


def consent_refusal(channel: str, consent: tuple[bool, str] | None) -> str | None:
    """Why marketing on `channel` may not go out, given the current (granted, source) consent
    for its purpose: `no_consent` (never granted), `consent_withdrawn`, or None when allowed."""
    if consent is None:
        return "no_consent"
    granted, _ = consent
    return None if granted else "consent_withdrawn"


def over_cap(sent_in_window: int, cap: int) -> bool:
    """The frequency cap: `cap` marketing messages per window; 0 means none at all."""
    return sent_in_window >= cap


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base x 4^(n-1), capped."""
    return float(min(max_s, base_s * (4 ** max(0, attempt - 1))))


def pick_locale(*candidates: str | None, default: str = "zh-CN") -> str:
    """The first supported locale among the candidates (`zh`, `zh-Hans` → zh-CN, `en-GB` → en)."""
    for candidate in candidates:
        if not candidate:
            continue
        lowered = candidate.lower()
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered.startswith("en"):
            return "en"
    return default


def pick_channel(requested: str, *preferences: str | None) -> str:
    """The channel to use: the requested one, or for `preferred` the first known preference."""
    if requested in CHANNELS:
        return requested
    for preference in preferences:
        if preference in CHANNELS:
            return preference
        if preference in ("weixin", "social"):
            return "wechat"
    return "email"


def occurs_on(kind_dates: list[dict[str, int | str]], kind: str, day: date) -> bool:
    """Whether one of the recurring dates of `kind` falls on `day` (29 Feb falls on 28 Feb in
    a common year, so it is never skipped)."""
    for entry in kind_dates:
        if entry.get("kind") != kind:
            continue
        month, dom = int(entry["month"]), int(entry["day"])
        if (month, dom) == (day.month, day.day):
            return True
        leap_day = (month, dom) == (2, 29)
        if leap_day and (day.month, day.day) == (2, 28) and not _is_leap(day.year):
            return True
    return False


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
