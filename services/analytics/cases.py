"""Service-desk case statistics: every case type's volumes, SLA compliance, first-response and
resolution p50/p90 and the customers' satisfaction rating, from the `case.*` events.

Kept apart from the complaint statistics (`/complaints/stats`, from `complaint.*`): cases of
every type, complaints included, fold into `case_facts`, one row per case, field by field
whatever the order of the events.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import models as m
from shared.contracts import cases as cc

CONTRACTS = (
    cc.CaseReceived,
    cc.CaseStatusChanged,
    cc.CaseAcknowledged,
    cc.CaseSlaBreached,
    cc.CaseResolved,
    cc.CaseRated,
)
COLUMNS = [c.name for c in m.case_facts.columns]
CaseGroupBy = Literal["type", "subtype", "channel", "severity", "month", "none"]
GROUP_KEYS = {
    "type": "c.type",
    "subtype": "c.type || coalesce('/' || c.subtype, '')",
    "channel": "c.channel",
    "severity": "c.severity",
    "month": "to_char(date_trunc('month', c.received_at AT TIME ZONE 'UTC'), 'YYYY-MM')",
    "none": "'all'",
}


def _later(current: datetime | None, candidate: datetime) -> bool:
    return current is None or candidate >= current


def fold(events: Iterable[cc.CaseEvent], alias: dict[uuid.UUID, uuid.UUID]) -> list[dict[str, Any]]:
    """One row per case from a batch of its events (customer ids through merge aliases)."""
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    for e in events:
        row = rows.get(e.case_id)
        if row is None:
            row = dict.fromkeys(COLUMNS)
            row.update(
                case_id=e.case_id,
                customer_id=alias.get(e.customer_id, e.customer_id),
                type=e.type,
                subtype=e.subtype,
                first_response_breached=False,
                resolution_breached=False,
            )
            rows[e.case_id] = row
        at = e.occurred_at
        if isinstance(e, cc.CaseReceived):
            row.update(channel=e.channel, severity=e.severity, received_at=at)
        elif isinstance(e, cc.CaseStatusChanged) and _later(row["status_at"], at):
            row.update(status=e.to_status, status_at=at)
        elif isinstance(e, cc.CaseAcknowledged):
            row.update(
                first_response_seconds=e.first_response_seconds,
                first_response_met=e.first_response_met,
            )
        elif isinstance(e, cc.CaseSlaBreached):
            row[f"{e.target}_breached"] = True
        elif isinstance(e, cc.CaseResolved) and _later(row["resolved_at"], at):
            row.update(
                resolved_at=at,
                resolution_seconds=e.resolution_seconds,
                resolution_met=e.resolution_met,
                outcome=e.outcome,
            )
        elif isinstance(e, cc.CaseRated) and _later(row["rated_at"], at):
            row.update(rating=e.rating, rated_at=at)
    return list(rows.values())


def _latest(t: sa.Table, x: Any, stamp: str, *cols: str) -> dict[str, Any]:
    newer = sa.or_(t.c[stamp].is_(None), sa.and_(x[stamp].is_not(None), x[stamp] >= t.c[stamp]))
    return {c: sa.case((newer, x[c]), else_=t.c[c]) for c in (stamp, *cols)}


async def write(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_upsert(), rows)


@functools.cache
def _upsert() -> Insert:
    """Built once: building it (its EXCLUDED columns above all) cost more than running it."""
    t = m.case_facts
    stmt = insert(t)
    x = stmt.excluded
    set_: dict[str, Any] = {
        c: sa.func.coalesce(x[c], t.c[c])
        for c in (
            "channel",
            "severity",
            "received_at",
            "first_response_seconds",
            "first_response_met",
        )
    }
    set_.update(_latest(t, x, "status_at", "status"))
    set_.update(_latest(t, x, "resolved_at", "resolution_seconds", "resolution_met", "outcome"))
    set_.update(_latest(t, x, "rated_at", "rating"))
    set_["type"], set_["subtype"] = x.type, x.subtype  # a re-typed case counts as its new type
    set_["first_response_breached"] = sa.or_(t.c.first_response_breached, x.first_response_breached)
    set_["resolution_breached"] = sa.or_(t.c.resolution_breached, x.resolution_breached)
    return stmt.on_conflict_do_update(index_elements=[t.c.case_id], set_=set_)


# -- the figures -------------------------------------------------------------------------------


class CaseDuration(BaseModel):
    """SLA seconds (paused time excluded) over the cases that have one."""

    count: int
    p50_seconds: float | None = None
    p90_seconds: float | None = None
    sla_met_pct: float | None = Field(
        None, description="Met and never breached, as % of cases with a decided target."
    )
    breached: int


class CaseGroup(BaseModel):
    key: str | None = Field(examples=["service_request"])
    received: int
    open: int = Field(description="Received and without an outcome yet.")
    resolved: int = Field(description="With an outcome (resolved, accepted or declined).")
    sla_compliance_pct: float | None = Field(
        None, description="Both targets together: met as % of decided."
    )
    first_response: CaseDuration
    resolution: CaseDuration
    rated: int = Field(description="Cases the customer rated.")
    rating_avg: float | None = Field(None, description="Mean rating, 1-5.")
    satisfied_pct: float | None = Field(None, description="Ratings of 4 or 5 as % of rated.")


class CaseStats(BaseModel):
    group_by: CaseGroupBy
    since: datetime = Field(serialization_alias="from")
    until: datetime = Field(serialization_alias="to")
    groups: list[CaseGroup]


STATS_SQL = """
SELECT {key} AS key,
       count(*) AS received,
       count(*) FILTER (WHERE c.resolved_at IS NULL AND coalesce(c.status, '') <> 'closed') AS open,
       count(*) FILTER (WHERE c.resolved_at IS NOT NULL) AS resolved,
       count(c.first_response_seconds) AS fr_n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.first_response_seconds) AS fr_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY c.first_response_seconds) AS fr_p90,
       count(*) FILTER (WHERE c.first_response_met AND NOT c.first_response_breached) AS fr_met,
       count(*) FILTER (WHERE c.first_response_met IS NOT NULL OR c.first_response_breached)
           AS fr_decided,
       count(*) FILTER (WHERE c.first_response_breached) AS fr_breached,
       count(c.resolution_seconds) AS res_n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.resolution_seconds) AS res_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY c.resolution_seconds) AS res_p90,
       count(*) FILTER (WHERE c.resolution_met AND NOT c.resolution_breached) AS res_met,
       count(*) FILTER (WHERE c.resolution_met IS NOT NULL OR c.resolution_breached)
           AS res_decided,
       count(*) FILTER (WHERE c.resolution_breached) AS res_breached,
       count(c.rating) AS rated,
       avg(c.rating) AS rating_avg,
       count(*) FILTER (WHERE c.rating >= 4) AS satisfied
FROM case_facts c
WHERE c.received_at >= :since AND c.received_at < :until
GROUP BY 1 ORDER BY 1
"""


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def stats(
    session: AsyncSession, group_by: str, since: datetime, until: datetime
) -> CaseStats:
    sql = sa.text(STATS_SQL.format(key=GROUP_KEYS[group_by]))
    rows = (await session.execute(sql, {"since": since, "until": until})).all()
    return CaseStats(
        group_by=group_by,
        since=since,
        until=until,
        groups=[
            CaseGroup(
                key=r.key,
                received=r.received,
                open=r.open,
                resolved=r.resolved,
                sla_compliance_pct=_pct(r.fr_met + r.res_met, r.fr_decided + r.res_decided),
                first_response=CaseDuration(
                    count=r.fr_n,
                    p50_seconds=_round(r.fr_p50),
                    p90_seconds=_round(r.fr_p90),
                    sla_met_pct=_pct(r.fr_met, r.fr_decided),
                    breached=r.fr_breached,
                ),
                resolution=CaseDuration(
                    count=r.res_n,
                    p50_seconds=_round(r.res_p50),
                    p90_seconds=_round(r.res_p90),
                    sla_met_pct=_pct(r.res_met, r.res_decided),
                    breached=r.res_breached,
                ),
                rated=r.rated,
                rating_avg=_round(r.rating_avg),
                satisfied_pct=_pct(r.satisfied, r.rated),
            )
            for r in rows
        ],
    )
