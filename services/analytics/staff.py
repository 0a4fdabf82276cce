"""Staff and service-quality figures: who followed up, contacted, handled and satisfied whom.

Queries over the projections (never commits), one per source, each keyed by the group: the
customer's `owner`, the `assignee` (the follow-up's assignee, the agent who logged the
interaction, the complaint's assignee) or that agent's `team` (a complaint's own team; for
follow-ups and interactions the agent's team from their latest complaint assignment).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

StaffGroupBy = Literal["owner", "assignee", "team"]

# The definitions, served with the figures (and in the OpenAPI text).
DEFINITIONS: dict[str, str] = {
    "followups_completed": "Follow-ups completed in [from, to).",
    "followups_completed_on_time_pct": "Of those, the share completed at or before their due "
    "time, in percent.",
    "followups_overdue_now": "Follow-ups due before `to` and, at `to`, neither completed nor "
    "cancelled.",
    "revisit_compliance_pct": "Of the group's customers, the share whose latest contact "
    "(interaction) before `to` lies within their tier's revisit cadence (A 14, B 30, C or "
    "untiered 90 days; settings ANALYTICS_CADENCE_*) of `to`. The group's customers: for "
    "`owner` the active customers they own; for `assignee`/`team` the customers with a "
    "follow-up assigned to them due in [from, to).",
    "interactions_logged": "Interactions that occurred in [from, to) (for `owner`: with their "
    "customers; otherwise logged by the agent).",
    "complaints_handled": "Complaints resolved in [from, to) (by the complaint's assignee or "
    "team, or of the owner's customers).",
    "first_response": "Complaints received in [from, to): SLA seconds to the first response "
    "(paused time excluded), p50 and p90 (continuous percentiles).",
    "resolution": "Complaints received in [from, to): SLA seconds to resolution, p50 and p90.",
    "sla_compliance_pct": "Complaints received in [from, to): targets (first response and "
    "resolution) met and never breached as a share of targets decided, in percent.",
    "resolution_rating": "Complaint resolutions rated in [from, to): count, mean rating (1-5) "
    "and the share rated 4 or 5 in percent.",
    "customer_csat": "Survey answers given in [from, to) by the group's customers (for "
    "`owner` the customers they own; for `assignee`/`team` the customers the agent logged an "
    "interaction with in [from, to)): count and the share of answers >= 4 (1-5), in percent.",
}


def _keys(group_by: StaffGroupBy) -> dict[str, tuple[str, str]]:
    """Per source: (key expression, extra joins)."""
    owner = "LEFT JOIN customer_facts cf ON cf.customer_id = {t}.customer_id"
    team_of = "LEFT JOIN agent_teams at ON at.agent_id = {col}"
    if group_by == "owner":
        return {
            "fu": ("cf.owner_id", owner.format(t="fu")),
            "i": ("cf.owner_id", owner.format(t="i")),
            "c": ("cf.owner_id", owner.format(t="c")),
        }
    if group_by == "assignee":
        return {"fu": ("fu.assignee_id", ""), "i": ("i.agent_id", ""), "c": ("c.assignee", "")}
    return {
        "fu": ("at.team", team_of.format(col="fu.assignee_id")),
        "i": ("at.team", team_of.format(col="i.agent_id")),
        "c": ("c.team", ""),
    }


@dataclass(frozen=True)
class Cadence:
    a_days: int
    b_days: int
    c_days: int


async def figures(
    session: AsyncSession,
    group_by: StaffGroupBy,
    since: datetime,
    until: datetime,
    cadence: Cadence,
) -> dict[str | None, dict[str, Any]]:
    """Every staff figure per group key (None: no owner / assignee / team known)."""
    keys = _keys(group_by)
    params: dict[str, Any] = {"since": since, "until": until}
    groups: dict[str | None, dict[str, Any]] = defaultdict(dict)

    fu_key, fu_join = keys["fu"]
    rows = await session.execute(
        sa.text(
            f"""
            SELECT {fu_key} AS key,
                   count(*) FILTER (WHERE fu.completed_at >= :since
                                      AND fu.completed_at < :until) AS completed,
                   count(*) FILTER (WHERE fu.completed_at >= :since AND fu.completed_at < :until
                                      AND fu.completed_at <= fu.due_at) AS on_time,
                   count(*) FILTER (WHERE fu.due_at < :until
                                      AND (fu.completed_at IS NULL OR fu.completed_at >= :until)
                                      AND (fu.cancelled_at IS NULL OR fu.cancelled_at >= :until))
                       AS overdue_now
            FROM followups fu {fu_join}
            WHERE (fu.completed_at >= :since AND fu.completed_at < :until) OR fu.due_at < :until
            GROUP BY 1
            """
        ),
        params,
    )
    for r in rows:
        if r.completed or r.overdue_now:
            groups[r.key].update(
                followups_completed=r.completed,
                followups_on_time=r.on_time,
                followups_overdue_now=r.overdue_now,
            )

    i_key, i_join = keys["i"]
    rows = await session.execute(
        sa.text(
            f"""
            SELECT {i_key} AS key, count(*) AS n
            FROM interactions i {i_join}
            WHERE i.occurred_at >= :since AND i.occurred_at < :until
            GROUP BY 1
            """
        ),
        params,
    )
    for r in rows:
        groups[r.key]["interactions_logged"] = r.n

    c_key, c_join = keys["c"]
    rows = await session.execute(
        sa.text(
            f"""
            SELECT {c_key} AS key,
              count(*) FILTER (WHERE c.resolved_at >= :since AND c.resolved_at < :until)
                  AS handled,
              count(c.first_response_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS fr_n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY c.first_response_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS fr_p50,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY c.first_response_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS fr_p90,
              count(c.resolution_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS res_n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY c.resolution_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS res_p50,
              percentile_cont(0.9) WITHIN GROUP (ORDER BY c.resolution_seconds)
                  FILTER (WHERE c.received_at >= :since AND c.received_at < :until) AS res_p90,
              count(*) FILTER (WHERE c.received_at >= :since AND c.received_at < :until
                  AND (c.first_response_met IS NOT NULL OR c.first_response_breached))
                + count(*) FILTER (WHERE c.received_at >= :since AND c.received_at < :until
                  AND (c.resolution_met IS NOT NULL OR c.resolution_breached)) AS decided,
              count(*) FILTER (WHERE c.received_at >= :since AND c.received_at < :until
                  AND c.first_response_met AND NOT c.first_response_breached)
                + count(*) FILTER (WHERE c.received_at >= :since AND c.received_at < :until
                  AND c.resolution_met AND NOT c.resolution_breached) AS met,
              count(c.rating) FILTER (WHERE c.rated_at >= :since AND c.rated_at < :until)
                  AS rated,
              avg(c.rating) FILTER (WHERE c.rated_at >= :since AND c.rated_at < :until)::float
                  AS rating_mean,
              count(*) FILTER (WHERE c.rated_at >= :since AND c.rated_at < :until
                                 AND c.rating >= 4) AS rated_satisfied
            FROM complaints c {c_join}
            WHERE (c.received_at >= :since AND c.received_at < :until)
               OR (c.resolved_at >= :since AND c.resolved_at < :until)
               OR (c.rated_at >= :since AND c.rated_at < :until)
            GROUP BY 1
            """
        ),
        params,
    )
    for r in rows:
        groups[r.key]["complaints"] = r

    csat_customers = {
        "owner": "SELECT customer_id, owner_id AS key FROM customer_facts",
        "assignee": "SELECT DISTINCT customer_id, agent_id AS key FROM interactions "
        "WHERE occurred_at >= :since AND occurred_at < :until",
        "team": "SELECT DISTINCT i.customer_id, at.team AS key FROM interactions i "
        "JOIN agent_teams at ON at.agent_id = i.agent_id "
        "WHERE i.occurred_at >= :since AND i.occurred_at < :until",
    }[group_by]
    rows = await session.execute(
        sa.text(
            f"""
            SELECT g.key, count(*) AS n, count(*) FILTER (WHERE a.score >= 4) AS satisfied
            FROM surveys s
            JOIN ({csat_customers}) g ON g.customer_id = s.customer_id
            JOIN survey_answers a ON a.survey_id = s.survey_id
            WHERE s.occurred_at >= :since AND s.occurred_at < :until
            GROUP BY 1
            """
        ),
        params,
    )
    for r in rows:
        groups[r.key]["csat"] = r

    their_customers = {
        "owner": "SELECT customer_id, owner_id AS key FROM customer_facts "
        "WHERE status = 'active' AND merged_into IS NULL AND NOT erased AND owner_id IS NOT NULL",
        "assignee": "SELECT DISTINCT customer_id, assignee_id AS key FROM followups "
        "WHERE due_at >= :since AND due_at < :until",
        "team": "SELECT DISTINCT fu.customer_id, at.team AS key FROM followups fu "
        "JOIN agent_teams at ON at.agent_id = fu.assignee_id "
        "WHERE fu.due_at >= :since AND fu.due_at < :until",
    }[group_by]
    rows = await session.execute(
        sa.text(
            f"""
            WITH g AS ({their_customers}),
            last AS (
                SELECT i.customer_id, max(i.occurred_at) AS at FROM interactions i
                WHERE i.occurred_at < :until AND i.customer_id IN (SELECT customer_id FROM g)
                GROUP BY 1
            )
            SELECT g.key, count(*) AS n,
                   count(*) FILTER (
                       WHERE last.at >= CAST(:until AS timestamptz) - make_interval(
                           days => CASE cf.tier WHEN 'A' THEN CAST(:a AS int)
                                           WHEN 'B' THEN CAST(:b AS int) ELSE CAST(:c AS int) END)
                   ) AS within
            FROM g
            JOIN customer_facts cf ON cf.customer_id = g.customer_id
            LEFT JOIN last ON last.customer_id = g.customer_id
            GROUP BY 1
            """
        ),
        {**params, "a": cadence.a_days, "b": cadence.b_days, "c": cadence.c_days},
    )
    for r in rows:
        groups[r.key]["revisit"] = r
    return dict(groups)
