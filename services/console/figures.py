"""Pure shaping of the APIs' answers into what the pages show: rows for tables and series for
charts. No I/O here, so each shape is unit-tested on its own (tests/unit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

DIMENSIONS = ("product_quality", "service", "price", "delivery", "after_sales", "overall")


def money(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def pareto_points(report: Mapping[str, Any]) -> list[tuple[float, float]]:
    """The contribution Pareto curve of a `GET /tiers` report, as (% of customers ranked so far,
    % of positive contribution they bring) points from (0, 0) to (100, 100).

    The head comes from the ranked members on the page (exact), the rest from the tier
    summaries, whose cumulative ends are exact points of the same curve: no customer is read
    one by one, so the curve costs one request whatever the number of customers.
    """
    customers = int(report.get("customers") or 0)
    total = money(report.get("total_positive_contribution"))
    if customers <= 0 or total <= 0:
        return []
    points: list[tuple[float, float]] = [(0.0, 0.0)]
    running = Decimal(0)
    members = (report.get("members") or {}).get("items") or []
    for member in members:
        running += max(money(member.get("contribution")), Decimal(0))
        points.append((_pct(member["rank"], customers), float(running / total * 100)))
    ranked, share = 0, 0.0
    for tier in sorted(report.get("tiers") or [], key=lambda t: str(t.get("tier"))):
        ranked += int(tier.get("customers") or 0)
        share += float(tier.get("share_of_contribution_pct") or 0.0)
        point = (_pct(ranked, customers), min(share, 100.0))
        if point[0] > points[-1][0]:
            points.append(point)
    if points[-1][0] < 100.0:
        points.append((100.0, 100.0))
    return [(round(x, 2), round(y, 2)) for x, y in points]


def _pct(part: float, whole: float) -> float:
    return float(part) / float(whole) * 100.0 if whole else 0.0


def tier_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per tier: customers, their share of all customers, contribution and its share."""
    customers = int(report.get("customers") or 0)
    rows = []
    for tier in sorted(report.get("tiers") or [], key=lambda t: str(t.get("tier"))):
        count = int(tier.get("customers") or 0)
        rows.append(
            {
                "tier": tier.get("tier"),
                "customers": count,
                "customers_pct": round(_pct(count, customers), 1) if customers else None,
                "contribution": money(tier.get("contribution")),
                "share_pct": tier.get("share_of_contribution_pct"),
            }
        )
    return rows


def satisfaction_series(report: Mapping[str, Any]) -> dict[str, Any]:
    """Satisfaction grouped by period (`group_by=day|week|month`): per dimension the satisfied
    share and its target per period, and the NPS with its target."""
    groups = [g for g in report.get("groups") or [] if g.get("key")]
    periods = [str(g["key"]) for g in groups]
    dimensions: dict[str, list[float | None]] = {}
    targets: dict[str, float] = {}
    for dimension in DIMENSIONS:
        values = []
        for group in groups:
            figure = (group.get("csat") or {}).get(dimension) or {}
            values.append(figure.get("satisfied_pct"))
            if figure.get("target_pct") is not None:
                targets[dimension] = float(figure["target_pct"])
        if any(v is not None for v in values):
            dimensions[dimension] = values
    nps = [(g.get("nps") or {}).get("score") for g in groups]
    nps_targets = [(g.get("nps") or {}).get("target") for g in groups]
    return {
        "periods": periods,
        "dimensions": dimensions,
        "targets": targets,
        "nps": nps,
        "nps_target": next((t for t in nps_targets if t is not None), None),
    }


def satisfaction_rows(series: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The latest period's satisfied share per dimension against its target (the table)."""
    rows = []
    for dimension, values in series["dimensions"].items():
        latest = next((v for v in reversed(values) if v is not None), None)
        target = series["targets"].get(dimension)
        gap = None if latest is None or target is None else round(latest - target, 1)
        rows.append({"dimension": dimension, "latest": latest, "target": target, "gap": gap})
    return rows


def complaint_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per group of `GET /complaints/stats`: received, open, SLA compliance and the
    first-response and resolution p50/p90 (seconds of SLA time)."""
    rows = []
    for group in stats.get("groups") or []:
        first = group.get("first_response") or {}
        resolution = group.get("resolution") or {}
        rows.append(
            {
                "key": group.get("key"),
                "received": group.get("received", 0),
                "open": group.get("open", 0),
                "resolved": group.get("resolved", 0),
                "sla_compliance_pct": group.get("sla_compliance_pct"),
                "first_response_p50": first.get("p50_seconds"),
                "first_response_p90": first.get("p90_seconds"),
                "resolution_p50": resolution.get("p50_seconds"),
                "resolution_p90": resolution.get("p90_seconds"),
                "breached": int(first.get("breached") or 0) + int(resolution.get("breached") or 0),
            }
        )
    rows.sort(key=lambda r: (-int(r["received"] or 0), str(r["key"])))
    return rows


def duration(seconds: float | None) -> str:
    """A span of seconds for people: `12 s`, `45 min`, `3.5 h`, `2.1 d`; `-` when unknown."""
    if seconds is None:
        return "-"
    value = abs(float(seconds))
    sign = "-" if seconds < 0 else ""
    if value < 60:  # a first response within the minute is not "0 min"
        return f"{sign}{value:.0f} s"
    if value < 3600:
        return f"{sign}{value / 60:.0f} min"
    if value < 86400:
        return f"{sign}{value / 3600:.1f} h"
    return f"{sign}{value / 86400:.1f} d"


def local_time(value: str | datetime | None, zone: tzinfo, with_time: bool = True) -> str:
    """An API timestamp in the console's time zone (`2026-11-30 09:30`)."""
    if not value:
        return "-"
    when = value if isinstance(value, datetime) else _parse(value)
    if when is None:
        return str(value)
    when = when.astimezone(zone)
    return when.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _parse(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- the staff table and the management report (analytics' StaffPerformance, ManagementReport) --


def staff_rows(groups: Any) -> list[dict[str, Any]]:
    """One row per owner, assignee or team of `GET /staff/performance` (its `groups`, or the
    management report's `staff` list): the figures the table shows, nested ones lifted out.
    `key` None is the group of records without an owner, assignee or team."""
    if isinstance(groups, Mapping):
        groups = groups.get("groups")
    rows = []
    for group in groups or []:
        if not isinstance(group, Mapping):
            continue
        first = group.get("first_response") or {}
        resolution = group.get("resolution") or {}
        rating = group.get("resolution_rating") or {}
        csat = group.get("customer_csat") or {}
        row = {
            "key": group.get("key"),
            "followups_completed": int(group.get("followups_completed") or 0),
            "followups_on_time_pct": group.get("followups_completed_on_time_pct"),
            "followups_overdue_now": int(group.get("followups_overdue_now") or 0),
            "revisit_compliance_pct": group.get("revisit_compliance_pct"),
            "revisit_customers": int(group.get("revisit_customers") or 0),
            "interactions_logged": int(group.get("interactions_logged") or 0),
            "complaints_handled": int(group.get("complaints_handled") or 0),
            "first_response_p50": first.get("p50_seconds"),
            "first_response_p90": first.get("p90_seconds"),
            "resolution_p50": resolution.get("p50_seconds"),
            "resolution_p90": resolution.get("p90_seconds"),
            "sla_compliance_pct": group.get("sla_compliance_pct"),
            "rating_mean": rating.get("mean"),
            "rating_count": int(rating.get("count") or 0),
            "csat_pct": csat.get("satisfied_pct"),
            "csat_count": int(csat.get("count") or 0),
        }
        rows.append(row)
    # Named groups first (as analytics sorts them), the group without a name last.
    rows.sort(key=lambda r: (r["key"] is None, str(r["key"] or "")))
    return rows


def management_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """`GET /reports/management` as the panel's sections: tier movements, satisfaction per
    dimension against target with the trend, NPS, complaints against the previous period,
    churn-risk changes and the staff figures."""
    movements = report.get("tier_movements") or {}
    complaints = report.get("complaints") or {}
    churn = report.get("churn") or {}
    satisfaction = [
        {
            "dimension": d.get("dimension"),
            "count": int(d.get("count") or 0),
            "satisfied_pct": d.get("satisfied_pct"),
            "target_pct": d.get("target_pct"),
            "gap_pct": d.get("gap_pct"),
            "trend_pct": d.get("trend_pct"),
        }
        for d in report.get("satisfaction") or []
        if isinstance(d, Mapping)
    ]
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    satisfaction.sort(key=lambda d: order.get(str(d["dimension"]), len(order)))
    return {
        "period": report.get("period"),
        "from": report.get("from"),
        "to": report.get("to"),
        "tier_movements": {
            "up": int(movements.get("up") or 0),
            "down": int(movements.get("down") or 0),
            "new": int(movements.get("new") or 0),
            "movers": list(movements.get("biggest_movers") or []),
        },
        "satisfaction": satisfaction,
        "nps": report.get("nps"),
        "nps_target": report.get("nps_target"),
        "complaints": {
            "received": int(complaints.get("received") or 0),
            "previous_received": int(complaints.get("previous_received") or 0),
            "open": int(complaints.get("open") or 0),
            "resolved": int(complaints.get("resolved") or 0),
            "sla_compliance_pct": complaints.get("sla_compliance_pct"),
            "previous_sla_compliance_pct": complaints.get("previous_sla_compliance_pct"),
            "first_response_p50": complaints.get("first_response_p50_seconds"),
            "resolution_p50": complaints.get("resolution_p50_seconds"),
        },
        "churn": {
            "new_high_risk": list(churn.get("new_high_risk") or []),
            # Analytics lists only the highest scores; older versions listed all.
            "new_high_risk_count": int(
                churn.get("new_high_risk_count") or len(churn.get("new_high_risk") or [])
            ),
            "by_owner": sorted(
                (churn.get("by_owner") or {}).items(), key=lambda kv: (-int(kv[1]), kv[0])
            ),
            "left_high_risk": int(churn.get("left_high_risk") or 0),
        },
        "staff": staff_rows(report.get("staff")),
    }


def churn_rows(page: Mapping[str, Any], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The churn-risk list with each customer's name where profiles gave one."""
    rows = []
    for item in page.get("items") or []:
        customer_id = str(item.get("customer_id"))
        rows.append({**item, "customer_id": customer_id, "name": names.get(customer_id)})
    return rows


# -- chart specifications: what console.js hands to ECharts -------------------------------------


def chart(
    kind: str,
    x: Sequence[Any] | None,
    series: list[dict[str, Any]],
    *,
    x_name: str = "",
    y_names: Sequence[str] = ("",),
    x_type: str = "category",
    y_max: float | None = None,
) -> dict[str, Any]:
    """A small, library-neutral chart description (console.js turns it into ECharts options);
    each series: name, data, and optionally `type`, `axis` (0 or 1) and `dashed`."""
    return {
        "kind": kind,
        "x": list(x) if x is not None else None,
        "x_type": x_type,
        "x_name": x_name,
        "y_names": list(y_names),
        "y_max": y_max,
        "series": series,
    }


def tier_chart(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    return chart(
        "bar",
        [r["tier"] for r in rows],
        [
            {"name": labels["customers"], "data": [r["customers"] for r in rows]},
            {
                "name": labels["share"],
                "data": [r["share_pct"] for r in rows],
                "axis": 1,
                "type": "line",
            },
        ],
        y_names=(labels["customers"], "%"),
    )


def pareto_chart(
    points: Sequence[tuple[float, float]], labels: Mapping[str, str]
) -> dict[str, Any]:
    return chart(
        "line",
        None,
        [
            {"name": labels["curve"], "data": [list(p) for p in points], "area": True},
            {"name": "80%", "data": [[0, 80], [100, 80]], "dashed": True},
        ],
        x_type="value",
        x_name=labels["x"],
        y_names=(labels["y"],),
        y_max=100,
    )


def satisfaction_chart(series: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {"name": labels[d], "data": values} for d, values in series["dimensions"].items()
    ]
    for target in sorted(set(series["targets"].values())):
        lines.append(
            {
                "name": f"{labels['target']} {target:g}%",
                "data": [target] * len(series["periods"]),
                "dashed": True,
            }
        )
    return chart("line", series["periods"], lines, y_names=("%",), y_max=100)


def nps_chart(series: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [{"name": "NPS", "data": series["nps"]}]
    if series["nps_target"] is not None:
        lines.append(
            {
                "name": labels["target"],
                "data": [series["nps_target"]] * len(series["periods"]),
                "dashed": True,
            }
        )
    return chart("line", series["periods"], lines, y_names=("NPS",))


def complaints_chart(
    rows: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> dict[str, Any]:
    return chart(
        "bar",
        [r["key"] or "-" for r in rows],
        [
            {"name": labels["received"], "data": [r["received"] for r in rows]},
            {
                "name": labels["sla"],
                "data": [r["sla_compliance_pct"] for r in rows],
                "axis": 1,
                "type": "line",
            },
        ],
        y_names=(labels["received"], "%"),
    )
