"""The service desk's pure rules: SLA policy matching (first match wins, the matrix last),
routing, references, the return window, lifecycles, notices, holidays in SLA time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.complaints import desk
from services.complaints.config import Settings
from services.complaints.desk import Policy, Rule
from services.complaints.sla import SlaClock

CASE = {
    "type": "service_request",
    "subtype": "repair",
    "severity": "high",
    "tier": "A",
    "channel": "phone",
    "category": "product_quality",
}


def test_the_first_matching_policy_wins_and_the_matrix_comes_last() -> None:
    defaults = desk.default_policies(Settings())
    listed = [
        Policy(
            name="phone-repair",
            type="service_request",
            subtype="repair",
            channel="email",
            first_response_s=1,
            resolution_s=2,
        ),
        Policy(
            name="repair",
            type="service_request",
            subtype="repair",
            first_response_s=3,
            resolution_s=4,
        ),
        Policy(name="any-repair-type", type="service_request", first_response_s=5, resolution_s=6),
    ]
    assert desk.first_match([*listed, *defaults], CASE).name == "repair"
    assert desk.first_match([*listed, *defaults], {**CASE, "channel": "email"}).name == (
        "phone-repair"
    )
    inquiry = {**CASE, "type": "inquiry", "subtype": None}
    chosen = desk.first_match([*listed, *defaults], inquiry)
    assert chosen.name == "default/high/A" and chosen.builtin
    assert chosen.first_response_s == Settings().targets("high", "A").first_response_s
    assert len(defaults) == 12  # every severity × tier: the defaults always match


def test_routing_takes_the_first_matching_rule_or_none() -> None:
    rules = [
        Rule(team="billing", category="billing"),
        Rule(team="field", skill="repair", type="service_request", subtype="repair"),
        Rule(team="vip", tier="A"),
    ]
    assert desk.route(rules, CASE) == rules[1]
    assert desk.route(rules, {**CASE, "subtype": "installation"}) == rules[2]
    assert desk.route(rules, {**CASE, "subtype": "other", "tier": "C"}) is None


def test_lifecycles_and_notices() -> None:
    assert desk.lifecycle("suggestion")["acknowledged"] == ("accepted", "declined")
    assert desk.lifecycle("claim")["received"] == ("acknowledged",)
    assert desk.default_outcome("suggestion", "declined") == "declined"
    assert desk.default_outcome("inquiry", "resolved") == "resolved"
    assert desk.outcome_summary("claim", "CL-2026-000001", "resolved", "refunded") == (
        "Your claim CL-2026-000001 has been resolved: refunded."
    )
    assert "accepted" in desk.outcome_summary("suggestion", "SG-2026-000002", "accepted", "x")


@pytest.mark.parametrize(
    ("days", "inside"), [(0, True), (6.9, True), (7, True), (7.01, False), (30, False)]
)
def test_the_return_window_counts_from_delivery(days: float, inside: bool) -> None:
    delivered = datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert desk.within_window(delivered, delivered + timedelta(days=days), 7) is inside


def test_holidays_are_skipped_by_business_calendars() -> None:
    calendar = {
        "business_hours": True,
        "timezone": "Asia/Shanghai",
        "day_start_hour": 9,
        "day_end_hour": 18,
        "weekdays": [0, 1, 2, 3, 4],
    }
    national_day = [date(2026, 10, d) for d in range(1, 8)]
    clock = SlaClock(Settings(), calendar, national_day)
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    wednesday_5pm = datetime(2026, 9, 30, 17, tzinfo=shanghai)
    # One business hour left on Wednesday, then the Golden Week: Thursday 8 October, 10:00.
    assert clock.add(wednesday_5pm, 2 * 3600) == datetime(2026, 10, 8, 10, tzinfo=shanghai)
    assert clock.elapsed(wednesday_5pm, datetime(2026, 10, 8, 10, tzinfo=shanghai)) == 2 * 3600
    without = SlaClock(Settings(), calendar)
    assert without.add(wednesday_5pm, 2 * 3600) == datetime(2026, 10, 1, 10, tzinfo=shanghai)


def test_round_the_clock_skips_holidays_only_when_asked() -> None:
    start = datetime(2026, 9, 30, 12, tzinfo=UTC)
    holiday = [date(2026, 10, 1)]
    plain = SlaClock(Settings(), {"business_hours": False}, holiday)
    assert plain.add(start, 24 * 3600) == start + timedelta(hours=24)
    skipping = SlaClock(Settings(), {"business_hours": False, "skip_holidays": True}, holiday)
    assert skipping.add(start, 24 * 3600) == start + timedelta(hours=48)
    assert skipping.elapsed(start, start + timedelta(hours=48)) == 24 * 3600
    # The service's own calendar (settings) skips holidays when business hours are on.
    settings = Settings(business_hours_enabled=True, business_timezone="UTC")
    wednesday_4pm = datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert SlaClock(settings, None, holiday).add(wednesday_4pm, 2 * 3600) == datetime(
        2026, 10, 2, 10, tzinfo=UTC
    )
