"""The console's pure parts: the shapes it draws from the APIs' answers, the language choice,
the redirect guard, the chart JSON escaping and its production settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.console import figures
from services.console.config import Settings
from services.console.i18n import MESSAGES, negotiate, translate
from services.console.pages import _local_path, report_state
from services.console.render import _chart_data
from services.console.upstream import Answer

TIERS = {
    "customers": 10,
    "total_positive_contribution": "1000.00",
    "tiers": [
        {"tier": "B", "customers": 3, "contribution": "150.00", "share_of_contribution_pct": 15.0},
        {"tier": "A", "customers": 2, "contribution": "800.00", "share_of_contribution_pct": 80.0},
        {"tier": "C", "customers": 5, "contribution": "40.00", "share_of_contribution_pct": 5.0},
    ],
    "members": {
        "items": [
            {"rank": 1, "customer_id": "a", "tier": "A", "contribution": "500.00"},
            {"rank": 2, "customer_id": "b", "tier": "A", "contribution": "300.00"},
        ]
    },
}


def test_the_pareto_curve_runs_from_the_ranked_head_through_each_tier_end_to_the_whole() -> None:
    points = figures.pareto_points(TIERS)
    assert points == [
        (0.0, 0.0),
        (10.0, 50.0),  # the top customer: 1 of 10, 500 of 1000
        (20.0, 80.0),  # the second ends tier A: 2 of 10, 80%
        (50.0, 95.0),  # A + B
        (100.0, 100.0),  # A + B + C
    ]


def test_the_pareto_curve_counts_only_positive_contribution_and_is_empty_without_any() -> None:
    report = {
        **TIERS,
        "members": {"items": [{"rank": 1, "contribution": "-50.00"}]},
        "tiers": [],
    }
    assert figures.pareto_points(report)[:2] == [(0.0, 0.0), (10.0, 0.0)]
    assert figures.pareto_points({**TIERS, "total_positive_contribution": "0"}) == []
    assert figures.pareto_points({**TIERS, "customers": 0}) == []


def test_tier_rows_are_in_tier_order_with_each_tiers_share_of_customers() -> None:
    rows = figures.tier_rows(TIERS)
    assert [(r["tier"], r["customers"], r["customers_pct"]) for r in rows] == [
        ("A", 2, 20.0),
        ("B", 3, 30.0),
        ("C", 5, 50.0),
    ]


SATISFACTION = {
    "groups": [
        {
            "key": "2026-10-01",
            "csat": {"service": {"satisfied_pct": 80.0, "target_pct": 85.0}},
            "nps": {"score": 20.0, "target": 30.0},
        },
        {
            "key": "2026-11-01",
            "csat": {
                "service": {"satisfied_pct": 90.0, "target_pct": 85.0},
                "price": {"satisfied_pct": 70.0, "target_pct": 80.0},
            },
            "nps": {"score": None, "target": 30.0},
        },
    ]
}


def test_satisfaction_is_a_series_per_dimension_with_gaps_left_empty_and_its_targets() -> None:
    series = figures.satisfaction_series(SATISFACTION)
    assert series["periods"] == ["2026-10-01", "2026-11-01"]
    assert series["dimensions"] == {"service": [80.0, 90.0], "price": [None, 70.0]}
    assert series["targets"] == {"service": 85.0, "price": 80.0}
    assert series["nps"] == [20.0, None] and series["nps_target"] == 30.0
    rows = {r["dimension"]: r for r in figures.satisfaction_rows(series)}
    assert rows["service"]["gap"] == 5.0 and rows["price"]["gap"] == -10.0


def test_the_satisfaction_chart_draws_one_dashed_line_per_distinct_target() -> None:
    series = figures.satisfaction_series(SATISFACTION)
    labels = {d: d for d in figures.DIMENSIONS} | {"target": "target"}
    chart = figures.satisfaction_chart(series, labels)
    dashed = [s for s in chart["series"] if s.get("dashed")]
    assert [s["data"] for s in dashed] == [[80.0, 80.0], [85.0, 85.0]]


def test_complaint_rows_carry_sla_compliance_and_percentiles_busiest_type_first() -> None:
    stats = {
        "groups": [
            {
                "key": "billing",
                "received": 2,
                "sla_compliance_pct": 50.0,
                "first_response": {"p50_seconds": 60, "p90_seconds": 120, "breached": 1},
                "resolution": {"p50_seconds": 7200, "p90_seconds": 90000, "breached": 0},
            },
            {"key": "delivery", "received": 5, "first_response": {}, "resolution": {}},
        ]
    }
    rows = figures.complaint_rows(stats)
    assert [r["key"] for r in rows] == ["delivery", "billing"]
    assert rows[1]["resolution_p90"] == 90000 and rows[1]["breached"] == 1
    assert rows[0]["sla_compliance_pct"] is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (12.4, "12 s"),
        (45 * 60, "45 min"),
        (3.5 * 3600, "3.5 h"),
        (2.5 * 86400, "2.5 d"),
        (-7200, "-2.0 h"),
    ],
)
def test_durations_read_in_the_unit_that_fits(seconds: float | None, shown: str) -> None:
    assert figures.duration(seconds) == shown


def test_times_are_shown_in_the_consoles_zone() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert figures.local_time("2026-11-30T16:30:00Z", zone) == "2026-12-01 00:30"
    assert figures.local_time(datetime(2026, 1, 1, tzinfo=UTC), zone, False) == "2026-01-01"
    assert figures.local_time(None, zone) == "-"


STAFF_GROUP = {
    "key": "agent-7",
    "followups_completed": 2,
    "followups_completed_on_time_pct": 50.0,
    "followups_overdue_now": 1,
    "revisit_compliance_pct": 66.67,
    "revisit_customers": 3,
    "interactions_logged": 2,
    "complaints_handled": 1,
    "first_response": {"count": 2, "p50_seconds": 450.0, "p90_seconds": 570.0},
    "resolution": {"count": 0, "p50_seconds": None, "p90_seconds": None},
    "sla_compliance_pct": 75.0,
    "resolution_rating": {"count": 1, "mean": 5.0, "satisfied_pct": 100.0},
    "customer_csat": {"count": 3, "satisfied_pct": 66.67},
}


def test_staff_rows_lift_the_nested_figures_and_put_the_group_without_a_name_last() -> None:
    unnamed = {"key": None, "interactions_logged": 1, "first_response": {}, "resolution": {}}
    rows = figures.staff_rows({"groups": [unnamed, STAFF_GROUP]})
    assert [r["key"] for r in rows] == ["agent-7", None]
    agent = rows[0]
    assert (agent["followups_on_time_pct"], agent["revisit_customers"]) == (50.0, 3)
    assert (agent["first_response_p50"], agent["first_response_p90"]) == (450.0, 570.0)
    assert agent["resolution_p50"] is None
    assert (agent["rating_mean"], agent["rating_count"]) == (5.0, 1)
    assert (agent["csat_pct"], agent["csat_count"]) == (66.67, 3)
    assert rows[1]["followups_completed"] == 0 and rows[1]["csat_pct"] is None
    # The management report's `staff` is the same groups as a bare list.
    assert figures.staff_rows([STAFF_GROUP]) == rows[:1]
    assert figures.staff_rows({"groups": []}) == [] and figures.staff_rows(None) == []


def test_the_management_report_becomes_its_sections() -> None:
    view = figures.management_report(
        {
            "period": "month",
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-12-01T00:00:00Z",
            "tier_movements": {"up": 3, "down": 1, "new": 40, "biggest_movers": []},
            "satisfaction": [
                {"dimension": "overall", "count": 4, "satisfied_pct": 75.0, "target_pct": 90.0},
                {"dimension": "service", "count": 2, "satisfied_pct": 50.0, "target_pct": 85.0},
            ],
            "nps": 12.5,
            "nps_target": 30.0,
            "complaints": {"received": 5, "open": 2, "resolved": 3, "previous_received": 1},
            "churn": {
                "new_high_risk_count": 4,
                "new_high_risk": [{"customer_id": "b", "score": 80, "reasons": []}],
                "by_owner": {"(none)": 1, "agent-2": 3},
                "left_high_risk": 2,
            },
            "staff": [STAFF_GROUP],
        }
    )
    assert view["tier_movements"] == {"up": 3, "down": 1, "new": 40, "movers": []}
    # Dimensions in the dashboard's order, whatever order the report lists them in.
    assert [d["dimension"] for d in view["satisfaction"]] == ["service", "overall"]
    assert (view["nps"], view["nps_target"]) == (12.5, 30.0)
    assert view["complaints"]["received"] == 5 and view["complaints"]["previous_received"] == 1
    assert view["complaints"]["sla_compliance_pct"] is None
    assert view["churn"]["by_owner"] == [("agent-2", 3), ("(none)", 1)]
    # The count is of every customer newly high, not of the few the report lists.
    assert view["churn"]["new_high_risk_count"] == 4
    assert [s["key"] for s in view["staff"]] == ["agent-7"]


def test_an_empty_management_report_has_every_section_with_zeros() -> None:
    view = figures.management_report({"period": "week"})
    assert view["tier_movements"] == {"up": 0, "down": 0, "new": 0, "movers": []}
    assert view["satisfaction"] == [] and view["staff"] == []
    assert view["churn"] == {
        "new_high_risk": [],
        "new_high_risk_count": 0,
        "by_owner": [],
        "left_high_risk": 0,
    }


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh-TW", "zh-CN"),
        ("fr-FR,en;q=0.5,zh;q=0.4", "en"),
        ("en;q=0.2,zh;q=0.8", "zh-CN"),
        ("fr-FR", "zh-CN"),
        ("", "zh-CN"),
        ("en;q=0", "zh-CN"),
    ],
)
def test_the_language_is_the_browsers_best_of_chinese_and_english(
    header: str, language: str
) -> None:
    assert negotiate(header) == language


def test_every_message_has_both_languages() -> None:
    assert all(zh and en and zh != "" for zh, en in MESSAGES.values())
    assert translate("en", "dashboard") == "Dashboard"
    assert translate("zh-CN", "dashboard") == "管理看板"
    assert translate("en", "dim.unheard_of") == "unheard of"


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("/customers/1?x=2", "/customers/1?x=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),  # browsers read a backslash as a slash
        ("javascript:alert(1)", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_inside_the_console(target: str | None, where: str) -> None:
    assert _local_path(target) == where


def test_chart_data_cannot_close_its_script_block() -> None:
    text = str(_chart_data({"name": "</script><script>alert(1)</script>&"}))
    assert "<" not in text and ">" not in text and "&" not in text.replace("\\u0026", "")
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>&"}


def test_production_refuses_a_weak_session_secret_and_dev_sign_in() -> None:
    strong = "s" * 40
    production = {"KEHU_ENV": "production", "KEHU_JWT_SECRET": "j" * 40}
    with pytest.raises(ValidationError, match="CONSOLE_SESSION_SECRET"):
        Settings(**production)
    with pytest.raises(ValidationError, match="CONSOLE_DEV_LOGIN"):
        Settings(**production, CONSOLE_SESSION_SECRET=strong, CONSOLE_DEV_LOGIN=True)
    settings = Settings(**production, CONSOLE_SESSION_SECRET=strong)
    assert not settings.dev_login_enabled and settings.secure_cookies
    assert Settings(KEHU_ENV="dev").dev_login_enabled


@pytest.mark.parametrize(
    ("answer", "state", "detail"),
    [
        (Answer(200, {"period": "month"}), "ok", None),
        (Answer(404, {"detail": "no route"}), "missing", "no route"),
        (Answer(403, {"detail": "scope"}), "forbidden", "scope"),
        (Answer(None, timed_out=True), "error", "analytics did not answer in time"),
        (Answer(None), "error", "analytics could not be reached"),
        (Answer(503, {"detail": "database is down"}), "error", "database is down"),
        (Answer(500, None), "error", "HTTP 500"),
    ],
)
def test_the_report_panel_calls_a_timeout_an_unreachable_analytics_and_a_5xx_errors(
    answer: Answer, state: str, detail: str | None
) -> None:
    got = report_state(answer, "en")
    assert got["state"] == state
    assert got.get("detail") == detail


def test_the_report_panels_error_is_in_the_pages_language() -> None:
    assert report_state(Answer(None, timed_out=True), "zh-CN")["detail"] == "分析服务响应超时"
