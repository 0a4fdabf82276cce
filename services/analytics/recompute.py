"""The global re-rank: every customer's facts, lifecycle, churn risk, ABC tier and RFM.

Computed, then applied. Every value is computed from a single snapshot into a staging table,
keeping only the customers whose values differ from what `customer_facts` holds (in steady
state: few): in one statement, or, for the background run's full runs, in steps on two
connections (`_stage_full_split`). The differences are then applied in short transactions of
`rerank_chunk` customers, each publishing its changes, `rerank_apply_connections` chunks at
once on their own connections (so the stage is an unlogged table, not a session's temporary
one: one run at a time holds the re-rank lock, and each run drops what a crashed one left).

It never blocks the consumer: the computation reads without locks; each chunk locks only the
rows free right now (`FOR UPDATE SKIP LOCKED`), so it never waits for a batch (nor for
another of its chunks: they cover disjoint id ranges) and none of them can deadlock, and a
batch waits at most for the short chunks running at that moment. A row a batch changed after
the snapshot (its `xmin` moved) keeps the batch's fresher facts, lifecycle and churn risk and
takes only the global ranks (tier, RFM); rows a batch holds are retried at the end, and the
batch has asked for the next re-rank anyway.

Debounced: consumer batches push `recompute_state.due_at` out; a background job on every
replica claims the run with a session advisory lock (one replica at a time) and clears
`due_at` when it starts, so a change during a run schedules the next one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.analytics.config import Settings
from services.analytics.metrics_sql import (
    ABC_CTES,
    FACTS_CTES,
    LIFECYCLE_CTES,
    RFM_CTES,
    Clock,
    _emit_sql,
    lifecycle_params,
)
from shared.contracts.analytics import (
    CustomerChurnRiskChanged,
    CustomerLifecycleChanged,
    CustomerTierChanged,
)

Db = AsyncSession | AsyncConnection
# pg_advisory_lock key of the re-rank (any constant unique within the analytics database).
RERANK_LOCK = 4_201_300_001
STAGE = "rerank_stage"

FACT_COLUMNS = (
    "revenue",
    "contribution",
    "revenue_recent",
    "revenue_prior",
    "purchase_count",
    "purchases_total",
    "first_purchase_at",
    "last_purchase_at",
    "last_contact_at",
    "interaction_count",
    "complaints_total",
    "complaints_open",
    "sla_breaches_recent",
    "dissatisfied_recent",
)
# Per customer: a consumer batch computes these too, so a batch's newer values win.
OWN_COLUMNS = (
    *FACT_COLUMNS,
    "lifecycle_stage",
    "churn_score",
    "churn_level",
    "churn_reasons",
    "lifecycle_next_at",
)
# Global ranks: only the re-rank computes them.
RANK_COLUMNS = ("tier", "rfm_recency_days", "rfm_r", "rfm_f", "rfm_m", "rfm_segment")
ALL_COLUMNS = (*OWN_COLUMNS, *RANK_COLUMNS)

# Fresh facts map to customer_facts' names; `cur` is customer_facts as of now with them.
_FRESH = {
    "revenue": "revenue",
    "contribution": "contribution",
    "revenue_recent": "revenue_recent",
    "revenue_prior": "revenue_prior",
    "purchase_count": "purchase_count",
    "purchases_total": "purchases_total",
    "first_purchase_at": "first_at",
    "last_purchase_at": "last_at",
    "last_contact_at": "last_contact_at",
    "interaction_count": "interaction_count",
    "complaints_total": "complaints_total",
    "complaints_open": "complaints_open",
    "sla_breaches_recent": "sla_breaches_recent",
    "dissatisfied_recent": "dissatisfied_recent",
}


def _fact(col: str) -> str:
    return f"CASE WHEN x.customer_id IS NULL THEN f.{col} ELSE x.{_FRESH[col]} END"


def _joined(source: str, fresh: str, columns: Sequence[str]) -> tuple[str, str]:
    """`source` (customer_facts as stored, `f`) joined to `fresh` (the recomputed facts, `x`),
    and `columns` as they are now: each stored value replaced by its recomputed fact where
    `fresh` has the customer."""
    picked = ", ".join(f"{_fact(col)} AS {col}" for col in columns)
    return f"{source} f LEFT JOIN {fresh} x ON x.customer_id = f.customer_id", picked


def _cur_cte(source: str, fresh: str) -> str:
    """`cur`: the narrow rows the ranks order (their measures and the stored ranks)."""
    joined, measures = _joined(
        source, fresh, ("contribution", "revenue", "purchase_count", "last_purchase_at")
    )
    return f"""cur AS MATERIALIZED (
    SELECT f.customer_id, f.merged_into, {measures},
           f.tier, f.rfm_recency_days, f.rfm_r, f.rfm_f, f.rfm_m, f.rfm_segment
    FROM {joined}
)"""


def _life_cte(source: str, fresh: str, due: str) -> str:
    """`life`: the rows whose lifecycle and churn risk to compute (`due` filters them)."""
    joined, facts = _joined(source, fresh, FACT_COLUMNS)
    return f"""life AS (
    SELECT f.customer_id, f.merged_into, f.lifecycle_stage, f.churn_score, f.churn_level,
           f.churn_reasons, f.lifecycle_next_at, {facts}
    FROM {joined}
    {due}
)"""


LIFE_CHANGES = """life_changes AS MATERIALIZED (
    SELECT * FROM leveled
    WHERE (old_stage, old_score, old_level, old_reasons, old_next_at)
          IS DISTINCT FROM (stage, score, level, reasons, next_at)
)"""
TIER_CHANGES = """tier_changes AS MATERIALIZED (
    SELECT customer_id, tier FROM tiered WHERE tier IS DISTINCT FROM old_tier
)"""
RFM_CHANGES = """rfm_changes AS MATERIALIZED (
    SELECT customer_id, recency, r, f, m, segment FROM segmented
    WHERE (old_recency, old_r, old_f, old_m, old_segment)
          IS DISTINCT FROM (recency, r, f, m, segment)
)"""


def _assemble(rows: str, fresh: str, life: str, tiers: str, rfm: str) -> str:
    """The staged rows: each customer of `rows` (`f`, customer_facts as stored, with its
    `row_xid`) for whom something differs, its new values taken from `fresh` (`x`), `life`
    (`l`, the lifecycle and churn changes), `tiers` (`t`) and `rfm` (`g`); a value that did not
    change is the stored one."""

    def life_value(col: str, new: str) -> str:
        return f"CASE WHEN l.customer_id IS NULL THEN f.{col} ELSE l.{new} END"

    def rfm_value(col: str, new: str) -> str:
        return (
            f"CASE WHEN f.merged_into IS NOT NULL OR ({_fact('last_purchase_at')}) IS NULL "
            f"THEN NULL WHEN g.customer_id IS NULL THEN f.{col} ELSE g.{new} END"
        )

    values = {
        **{col: _fact(col) for col in FACT_COLUMNS},
        "lifecycle_stage": life_value("lifecycle_stage", "stage"),
        "churn_score": life_value("churn_score", "score"),
        "churn_level": life_value("churn_level", "level"),
        "churn_reasons": life_value("churn_reasons", "reasons"),
        "lifecycle_next_at": life_value("lifecycle_next_at", "next_at"),
        "tier": "CASE WHEN f.merged_into IS NOT NULL THEN NULL "
        "WHEN t.customer_id IS NULL THEN f.tier ELSE t.tier END",
        "rfm_recency_days": rfm_value("rfm_recency_days", "recency"),
        "rfm_r": rfm_value("rfm_r", "r"),
        "rfm_f": rfm_value("rfm_f", "f"),
        "rfm_m": rfm_value("rfm_m", "m"),
        "rfm_segment": rfm_value("rfm_segment", "segment"),
    }
    assert set(values) == set(ALL_COLUMNS)
    old = ", ".join(f"f.{c}" for c in ALL_COLUMNS)
    new = ", ".join(values[c] for c in ALL_COLUMNS)
    selected = ",\n       ".join(f"{values[c]} AS {c}" for c in ALL_COLUMNS)
    return f"""SELECT f.customer_id,
       {selected},
       f.row_xid::text::bigint AS row_xmin
FROM {rows}
LEFT JOIN {fresh} x ON x.customer_id = f.customer_id
LEFT JOIN {life} l ON l.customer_id = f.customer_id
LEFT JOIN {tiers} t ON t.customer_id = f.customer_id
LEFT JOIN {rfm} g ON g.customer_id = f.customer_id
WHERE ({old}) IS DISTINCT FROM ({new})
   OR (f.facts_at IS NULL AND x.customer_id IS NOT NULL)
"""


def _stage_sql(incremental: bool) -> str:
    """The customers whose values differ from the stored ones, with their new row, in one
    statement (the in-transaction re-rank, and the background one's incremental runs).

    Incremental: facts are recomputed only for `:ids` (the customers whose facts may have
    changed since the last run); everyone else keeps the facts stored, which consumer batches
    keep current. Lifecycle and churn risk are computed only for those and for the customers
    whose `lifecycle_next_at` has passed (time alone moves nobody else's); the others keep
    theirs. ABC and RFM are global ranks, computed for all over narrow rows (ids, measures and
    the stored ranks to compare with). Only the customers for whom something differs are
    assembled into full rows (by primary key); a value that did not change is the stored one.
    A full run computes everything for everyone."""
    if incremental:
        facts = FACTS_CTES.format(
            f=" AND customer_id = ANY(:ids)",
            rf=" AND rf.customer_id = ANY(:ids)",
            sv=" AND sv.customer_id = ANY(:ids)",
        )
        due = (
            "WHERE x.customer_id IS NOT NULL OR f.lifecycle_next_at IS NULL "
            "OR f.lifecycle_next_at <= CAST(:as_of AS timestamptz)"
        )
        # Each candidate's stored row through the primary key (OFFSET 0 keeps it a nested
        # loop: the planner cannot count the candidates and would hash the whole table).
        rows = """(
    SELECT customer_id FROM fresh
    UNION SELECT customer_id FROM life_changes
    UNION SELECT customer_id FROM tier_changes
    UNION SELECT customer_id FROM rfm_changes
    UNION SELECT customer_id FROM cur
    WHERE (merged_into IS NOT NULL AND tier IS NOT NULL)
       OR ((merged_into IS NOT NULL OR last_purchase_at IS NULL)
           AND (rfm_recency_days, rfm_r, rfm_f, rfm_m, rfm_segment)
               IS DISTINCT FROM (NULL, NULL, NULL, NULL, NULL))
) k
CROSS JOIN LATERAL (
    SELECT *, xmin AS row_xid FROM customer_facts WHERE customer_id = k.customer_id OFFSET 0
) f"""
    else:
        facts = FACTS_CTES.format(f="", rf="", sv="")
        due = ""
        rows = "(SELECT *, xmin AS row_xid FROM customer_facts) f"
    return f"""
CREATE UNLOGGED TABLE {STAGE} AS
{facts},
{_cur_cte("customer_facts", "fresh")},
{_life_cte("customer_facts", "fresh", due)},
{LIFECYCLE_CTES.format(source="life", f="")},
{ABC_CTES.format(source="cur")},
{RFM_CTES.format(source="cur")},
{LIFE_CHANGES},
{TIER_CHANGES},
{RFM_CHANGES}
{_assemble(rows, "fresh", "life_changes", "tier_changes", "rfm_changes")}"""


# The full run of the background re-rank, in steps over work tables (unlogged, like the stage,
# and dropped with it): the stored rows and the recomputed facts copied from one snapshot; the
# lifecycle and churn changes on one connection while the ranks are computed on another; then
# the staged rows assembled from the four. One statement did the same work on one core for
# most of its run (the lifecycle expressions, the rank sorts and the assembly each wait for
# the one before; CTEs keep the planner from parallel joins above them).
STORED = "rerank_stored"
FRESH = "rerank_fresh"
LIFE = "rerank_life"
TIERS = "rerank_tiers"
RFM = "rerank_rfm"
WORK_TABLES = (STAGE, STORED, FRESH, LIFE, TIERS, RFM)
SPLIT_SNAPSHOT_SQL = (
    f"CREATE UNLOGGED TABLE {STORED} AS SELECT *, xmin AS row_xid FROM customer_facts",
    f"CREATE UNLOGGED TABLE {FRESH} AS {FACTS_CTES.format(f='', rf='', sv='')} SELECT * FROM fresh",
)
SPLIT_LIFE_SQL = f"""
CREATE UNLOGGED TABLE {LIFE} AS
WITH {_life_cte(STORED, FRESH, "")},
{LIFECYCLE_CTES.format(source="life", f="")},
{LIFE_CHANGES}
SELECT * FROM life_changes
"""


def _rank_sql(table: str, ranks: str, changes: str) -> str:
    """Into `table`: the rows one global rank changes (the CTE `changes`, selected by name)."""
    return f"""
CREATE UNLOGGED TABLE {table} AS
WITH {_cur_cte(STORED, FRESH)},
{ranks},
{changes}
SELECT * FROM {changes.split(" ", 1)[0]}
"""


SPLIT_RANK_SQL = (
    _rank_sql(TIERS, ABC_CTES.format(source="cur"), TIER_CHANGES),
    _rank_sql(RFM, RFM_CTES.format(source="cur"), RFM_CHANGES),
)
SPLIT_ASSEMBLE_SQL = f"""
CREATE UNLOGGED TABLE {STAGE} AS
{_assemble(f"{STORED} f", FRESH, LIFE, TIERS, RFM)}"""


# Customers whose facts may differ from the stored ones: marked by a batch that skipped the
# per-customer refresh (facts_at null), or with a fact crossing a window edge since the last
# run (leaving the window or its recent half, or dated after the last run).
DIRTY_SQL = """
SELECT customer_id FROM customer_facts WHERE facts_at IS NULL
UNION
SELECT customer_id FROM purchases
WHERE (occurred_at > :prev_window_start AND occurred_at <= :window_start)
   OR (occurred_at > :prev_half_start AND occurred_at <= :half_start)
   OR (occurred_at > :prev_as_of AND occurred_at <= :as_of)
UNION
SELECT customer_id FROM refunds
WHERE (occurred_at > :prev_window_start AND occurred_at <= :window_start)
   OR (occurred_at > :prev_half_start AND occurred_at <= :half_start)
   OR (occurred_at > :prev_as_of AND occurred_at <= :as_of)
UNION
SELECT customer_id FROM interactions WHERE occurred_at > :prev_as_of AND occurred_at <= :as_of
UNION
SELECT customer_id FROM complaints
WHERE (received_at > :prev_recent_start AND received_at <= :recent_start)
   OR (rated_at > :prev_recent_start AND rated_at <= :recent_start)
UNION
SELECT customer_id FROM surveys
WHERE (occurred_at > :prev_recent_start AND occurred_at <= :recent_start)
   OR (occurred_at > :prev_as_of AND occurred_at <= :as_of)
"""


def _apply_sql(chunk_filter: str) -> str:
    """Apply one chunk of the stage; tier, lifecycle and churn events for actual changes.

    `chunk_filter` (on `{c}`, the customer id) bounds the stage, so each chunk
    reads only its own rows: joined by the ids alone, the planner scanned the whole table for
    every chunk (quadratic at a million). The rows are locked one by one through the primary
    key in id order (a lateral lookup per staged customer): a steady run's few differing
    customers are spread over the whole id space, and a range scan read a third of the table
    per chunk."""
    own = ",\n        ".join(
        f"{c} = CASE WHEN w.fresh THEN w.{c} ELSE f.{c} END" for c in OWN_COLUMNS
    )
    ranks = ", ".join(f"{c} = w.{c}" for c in RANK_COLUMNS)
    ranks += ", facts_at = CASE WHEN w.fresh THEN CAST(:as_of AS timestamptz) ELSE f.facts_at END"
    tier_emit = _emit_sql(
        CustomerTierChanged,
        "changed",
        "'tier', tier, 'previous_tier', old_tier, 'contribution', contribution::text",
        "tier IS DISTINCT FROM old_tier AND tier IS NOT NULL",
    )
    lifecycle_emit = _emit_sql(
        CustomerLifecycleChanged,
        "changed",
        "'stage', stage, 'previous_stage', old_stage",
        "fresh AND stage IS DISTINCT FROM old_stage",
    )
    churn_emit = _emit_sql(
        CustomerChurnRiskChanged,
        "changed",
        "'score', score, 'previous_score', old_score, 'level', level, 'reasons', to_jsonb(reasons)",
        "fresh AND score <> coalesce(old_score, 0)",
    )
    return f"""
WITH chunk AS (
    SELECT * FROM {STAGE} WHERE {chunk_filter.format(c="customer_id")}
),
locked AS (
    SELECT f.* FROM (SELECT customer_id FROM chunk ORDER BY customer_id) k
    CROSS JOIN LATERAL (
        SELECT f.customer_id, f.ctid AS row_ctid, f.xmin::text::bigint AS cur_xmin,
               f.tier AS old_tier,
               f.lifecycle_stage AS old_stage, f.churn_score AS old_score,
               f.contribution AS old_contribution
        FROM customer_facts f
        WHERE f.customer_id = k.customer_id
        FOR UPDATE SKIP LOCKED
    ) f
),
w AS MATERIALIZED (
    SELECT s.*, l.row_ctid, l.old_tier, l.old_stage, l.old_score, l.old_contribution,
           l.cur_xmin = s.row_xmin AS fresh
    FROM chunk s JOIN locked l ON l.customer_id = s.customer_id
),
changed AS (
    UPDATE customer_facts f SET
        {own},
        {ranks}
    FROM w  -- the row versions locked above (a locked row cannot move), by TID: joined on
    -- the TIDs alone, the planner hashed `w` and read all of customer_facts per chunk
    WHERE f.ctid = ANY(ARRAY(SELECT row_ctid FROM w))
      AND f.customer_id = w.customer_id AND f.ctid = w.row_ctid
    RETURNING w.customer_id, w.fresh, f.erased, w.tier, w.old_tier,
              CASE WHEN w.fresh THEN w.contribution ELSE w.old_contribution END AS contribution,
              w.lifecycle_stage AS stage, w.old_stage, w.churn_score AS score, w.old_score,
              w.churn_level AS level, w.churn_reasons AS reasons
),
tier_events AS ({tier_emit}),
lifecycle_events AS ({lifecycle_emit}),
churn_events AS ({churn_emit})
SELECT (SELECT count(*) FROM changed) AS applied,
       (SELECT count(*) FROM tier_events) AS tiers,
       (SELECT count(*) FROM lifecycle_events) AS lifecycle,
       (SELECT count(*) FROM churn_events) AS churn,
       (SELECT coalesce(array_agg(customer_id), '{{}}') FROM chunk
        WHERE customer_id NOT IN (SELECT customer_id FROM locked)) AS skipped
"""


STAGE_SQL = _stage_sql(incremental=False)
STAGE_INCREMENTAL_SQL = _stage_sql(incremental=True)
# The last chunk runs to the largest uuid (a plain range keeps the index usable).
APPLY_RANGE_SQL = _apply_sql(
    "{c} > CAST(:after AS uuid) "
    "AND {c} <= coalesce(CAST(:upto AS uuid), 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid)"
)
APPLY_IDS_SQL = _apply_sql("{c} = ANY(:ids)")
IDS = sa.bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
RANGE = (
    sa.bindparam("after", type_=UUID(as_uuid=True)),
    sa.bindparam("upto", type_=UUID(as_uuid=True)),
)
NIL = uuid.UUID(int=0)


@dataclass(frozen=True)
class RerankResult:
    as_of: datetime
    tier_events: int
    lifecycle_events: int
    churn_events: int
    rfm_rows: int
    duration_ms: int
    # Of which computing the staging table (the rest: applying it and publishing).
    stage_ms: int = 0


@dataclass
class _Tally:
    applied: int = 0
    tiers: int = 0
    lifecycle: int = 0
    churn: int = 0

    def add(self, row: Any) -> list[uuid.UUID]:
        self.applied += int(row.applied)
        self.tiers += int(row.tiers)
        self.lifecycle += int(row.lifecycle)
        self.churn += int(row.churn)
        return list(row.skipped or [])


async def _dirty(db: Db, settings: Settings, clock: Clock) -> list[uuid.UUID] | None:
    """The customers whose facts to recompute, or None for everyone (no earlier run to build
    on, a clock going backwards, or the last full refresh older than `rerank_full_every_s`)."""
    state = (
        await db.execute(
            sa.text("SELECT last_run_at, last_full_at FROM recompute_state WHERE name = 'rerank'")
        )
    ).first()
    if state is None or state.last_run_at is None or state.last_full_at is None:
        return None
    if clock.as_of < state.last_run_at:
        return None
    if (clock.as_of - state.last_full_at).total_seconds() >= settings.rerank_full_every_s:
        return None
    prev = Clock.at(state.last_run_at, settings)
    params = {**clock.params(), **{f"prev_{k}": v for k, v in prev.params().items()}}
    return list((await db.execute(sa.text(DIRTY_SQL), params)).scalars())


PARALLEL_FROM = 50_000  # customers (the planner's estimate)
PARALLEL_STAGE = (
    "parallel_setup_cost = 0",
    "parallel_tuple_cost = 0.001",
    "min_parallel_table_scan_size = 0",
)


async def _stage_settings(db: Db, settings: Settings) -> None:
    await db.execute(sa.text(f"SET LOCAL work_mem = '{settings.rerank_work_mem}'"))
    await db.execute(
        sa.text(f"SET LOCAL statement_timeout = {int(settings.rerank_statement_timeout_ms)}")
    )


async def _full_settings(db: Db, parallel: bool) -> tuple[str, ...]:
    """The planner settings of a full run's statements (until RESET); the names set."""
    # Everyone: the purchases aggregate walked the customer_id index through the whole table
    # (a random heap page per purchase: 11 of 42 s at 1M); a scan and a hash aggregate read
    # it once.
    await db.execute(sa.text("SET LOCAL enable_indexscan = off"))
    await db.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
    # The scans, aggregates and joins on parallel workers: costing a worker's start-up and
    # rows at the defaults, the planner kept the whole statement on one core (EXPLAIN ANALYZE
    # at 1M: 27.4 -> 23.3 s). Not for a small base, where starting the workers costs more
    # than they save.
    workers = PARALLEL_STAGE if parallel else ()
    for setting in workers:
        await db.execute(sa.text(f"SET LOCAL {setting}"))
    return ("enable_indexscan", "enable_bitmapscan", *(w.split(" = ")[0] for w in workers))


async def _large(db: Db) -> bool:
    """Whether the base is large enough for parallel workers (the planner's estimate)."""
    customers = await db.execute(
        sa.text("SELECT reltuples FROM pg_class WHERE oid = 'customer_facts'::regclass")
    )
    return (customers.scalar() or 0) >= PARALLEL_FROM


async def _prepare(
    db: Db, settings: Settings, as_of: datetime | None
) -> tuple[Clock, dict[str, Any], list[uuid.UUID] | None]:
    """(clock, the statements' parameters, the customers whose facts to recompute or None for
    everyone), having dropped what a crashed run left."""
    await _stage_settings(db, settings)
    if as_of is None:
        as_of = (await db.execute(sa.select(sa.func.now()))).scalar_one()
    clock = Clock.at(as_of, settings)
    for table in WORK_TABLES:
        await db.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    params = {
        **lifecycle_params(clock, settings),
        "a_share": Decimal(str(settings.tier_a_share)),
        "b_share": Decimal(str(settings.tier_b_share)),
    }
    return clock, params, await _dirty(db, settings, clock)


async def _staged(db: Db) -> int:
    await db.execute(sa.text(f"CREATE UNIQUE INDEX ON {STAGE} (customer_id)"))
    await db.execute(sa.text(f"ANALYZE {STAGE}"))
    return int((await db.execute(sa.text(f"SELECT count(*) FROM {STAGE}"))).scalar_one())


async def _stage(db: Db, settings: Settings, as_of: datetime | None) -> tuple[Clock, int, bool]:
    """Compute every value into the staging table in one statement, in the caller's
    transaction; (clock, customers that differ, full)."""
    clock, params, dirty = await _prepare(db, settings, as_of)
    if dirty is None:
        reset = await _full_settings(db, await _large(db))
        await db.execute(sa.text(STAGE_SQL), params)
        for name in reset:
            await db.execute(sa.text(f"RESET {name}"))
    else:
        statement = sa.text(STAGE_INCREMENTAL_SQL).bindparams(IDS)
        await db.execute(statement, {**params, "ids": dirty})
    return clock, await _staged(db), dirty is None


async def _stage_full_split(
    engine: AsyncEngine, conn: AsyncConnection, settings: Settings, params: dict[str, Any]
) -> None:
    """A full run's staging table in steps on two connections (the work tables above); `conn`
    outside a transaction, the stage committed at the end."""
    async with conn.begin():
        # Both copies from one snapshot, as the single statement reads.
        await conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        await _stage_settings(conn, settings)
        parallel = await _large(conn)
        await _full_settings(conn, parallel)
        for sql in SPLIT_SNAPSHOT_SQL:
            await conn.execute(sa.text(sql), params)
        await conn.execute(sa.text(f"ANALYZE {STORED}, {FRESH}"))

    async def compute(db: AsyncConnection, statements: Sequence[str]) -> None:
        async with db.begin():
            await _stage_settings(db, settings)
            await _full_settings(db, parallel)
            for sql in statements:
                await db.execute(sa.text(sql), params)

    async def lifecycle() -> None:
        async with engine.connect() as db:
            await compute(db, (SPLIT_LIFE_SQL,))

    async with asyncio.TaskGroup() as group:
        group.create_task(lifecycle())
        group.create_task(compute(conn, SPLIT_RANK_SQL))
    async with conn.begin():
        await _stage_settings(conn, settings)
        await _full_settings(conn, parallel)
        await conn.execute(sa.text(SPLIT_ASSEMBLE_SQL), params)
        for table in WORK_TABLES:
            if table != STAGE:
                await conn.execute(sa.text(f"DROP TABLE {table}"))


async def _boundaries(db: Db, chunk: int) -> list[uuid.UUID | None]:
    """Upper bounds of the chunks over the stage, in id order (None: to the end)."""
    rows = await db.execute(
        sa.text(
            f"SELECT customer_id FROM (SELECT customer_id, row_number() OVER "
            f"(ORDER BY customer_id) AS n FROM {STAGE}) x WHERE n % :chunk = 0 ORDER BY 1"
        ),
        {"chunk": chunk},
    )
    return [*rows.scalars(), None]


async def _chunk_settings(db: Db, settings: Settings) -> None:
    """A chunk's transaction: room to sort and hash its rows in memory, and an asynchronous
    commit. Safe to lose in a crash: a chunk's rows and its events commit (or vanish)
    together, and whatever a lost chunk applied is derived again by the next run (its ranks are
    global, its customers' lifecycle stays due and their facts dirty, since `last_run_at` moves
    only in the synchronous commit that ends the run and flushes every earlier chunk too). The
    relay may publish a chunk's events in the moment before its commit is flushed; if that
    commit is then lost, the next run publishes the same changes again under new ids, which
    consumers apply as the same values: never a change lost, at worst one told twice."""
    await db.execute(sa.text(f"SET LOCAL work_mem = '{settings.rerank_work_mem}'"))
    await db.execute(sa.text("SET LOCAL synchronous_commit = off"))
    await db.execute(sa.text("SET LOCAL enable_seqscan = off"))


async def _apply_range(
    db: Db, clock: Clock, after: uuid.UUID, upto: uuid.UUID | None, tally: _Tally
) -> list[uuid.UUID]:
    statement = sa.text(APPLY_RANGE_SQL).bindparams(*RANGE)
    row = (await db.execute(statement, {"as_of": clock.as_of, "after": after, "upto": upto})).one()
    return tally.add(row)


async def _apply_ids(
    db: Db, clock: Clock, ids: Sequence[uuid.UUID], tally: _Tally
) -> list[uuid.UUID]:
    statement = sa.text(APPLY_IDS_SQL).bindparams(IDS)
    row = (await db.execute(statement, {"as_of": clock.as_of, "ids": list(ids)})).one()
    return tally.add(row)


async def _finish(db: Db, as_of: datetime, duration_ms: int, clear_due: bool, full: bool) -> None:
    clear = "due_at = NULL, first_requested_at = NULL, " if clear_due else ""
    if full:
        clear += "last_full_at = :as_of, "
    await db.execute(
        sa.text(
            f"UPDATE recompute_state SET {clear}last_run_at = :as_of, last_duration_ms = :ms "
            "WHERE name = 'rerank'"
        ),
        {"as_of": as_of, "ms": duration_ms},
    )


async def rerank(
    session: AsyncSession, settings: Settings, as_of: datetime | None = None
) -> RerankResult:
    """The whole re-rank inside the caller's transaction (rebuild, admin, tests).

    Takes the state row first, like every batch, so batches wait for this transaction; the
    background job uses `rerank_concurrently`, which never makes them wait."""
    started = time.perf_counter()
    await lock_state(session)
    clock, staged, full = await _stage(session, settings, as_of)
    stage_ms = int((time.perf_counter() - started) * 1000)
    tally = _Tally()
    if staged:
        skipped = await _apply_range(session, clock, NIL, None, tally)
        while skipped:  # only a transaction that took no state row (none normally) holds rows
            await asyncio.sleep(settings.rerank_retry_delay_s)
            skipped = await _apply_ids(session, clock, skipped, tally)
    await session.execute(sa.text(f"DROP TABLE {STAGE}"))
    duration_ms = int((time.perf_counter() - started) * 1000)
    await _finish(session, clock.as_of, duration_ms, clear_due=True, full=full)
    return RerankResult(
        clock.as_of, tally.tiers, tally.lifecycle, tally.churn, tally.applied, duration_ms, stage_ms
    )


async def rerank_concurrently(
    engine: AsyncEngine,
    settings: Settings,
    as_of: datetime | None = None,
    *,
    only_if_due: bool = False,
) -> RerankResult | None:
    """The re-rank in short transactions beside the consumer; None if another one runs (or,
    with `only_if_due`, none is due)."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        got = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": RERANK_LOCK})
        await conn.commit()
        if not got:
            return None
        try:
            async with conn.begin():
                if not await _claim(conn, settings, only_if_due):
                    return None
            async with conn.begin():
                clock, params, dirty = await _prepare(conn, settings, as_of)
                if dirty is not None:
                    statement = sa.text(STAGE_INCREMENTAL_SQL).bindparams(IDS)
                    await conn.execute(statement, {**params, "ids": dirty})
            full = dirty is None
            if full:
                await _stage_full_split(engine, conn, settings, params)
            async with conn.begin():
                staged = await _staged(conn)
                bounds = await _boundaries(conn, settings.rerank_chunk) if staged else []
            stage_ms = int((time.perf_counter() - started) * 1000)
            tally = _Tally()
            skipped: list[uuid.UUID] = []
            if staged:
                skipped = await _apply_chunks(engine, conn, settings, clock, bounds, tally)
                for _ in range(settings.rerank_retries):
                    if not skipped:
                        break
                    await asyncio.sleep(settings.rerank_retry_delay_s)
                    async with conn.begin():
                        await _chunk_settings(conn, settings)
                        skipped = await _apply_ids(conn, clock, skipped, tally)
            duration_ms = int((time.perf_counter() - started) * 1000)
            async with conn.begin():
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {STAGE}"))
                await _finish(conn, clock.as_of, duration_ms, clear_due=False, full=full)
        finally:
            await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RERANK_LOCK})
            await conn.commit()
    return RerankResult(
        clock.as_of, tally.tiers, tally.lifecycle, tally.churn, tally.applied, duration_ms, stage_ms
    )


async def _apply_chunks(
    engine: AsyncEngine,
    conn: AsyncConnection,
    settings: Settings,
    clock: Clock,
    bounds: Sequence[uuid.UUID | None],
    tally: _Tally,
) -> list[uuid.UUID]:
    """Apply every chunk, each in its own transaction, `rerank_apply_connections` at once
    (`conn` and further connections from the pool); the rows skipped as locked."""
    lowers = [NIL, *(b for b in bounds[:-1] if b is not None)]
    ranges = iter(zip(lowers, bounds, strict=True))
    skipped: list[uuid.UUID] = []

    async def worker(db: AsyncConnection) -> None:
        for after, upto in ranges:  # shared: each chunk is taken by exactly one worker
            async with db.begin():
                await _chunk_settings(db, settings)
                skipped.extend(await _apply_range(db, clock, after, upto, tally))

    async def pooled_worker() -> None:
        async with engine.connect() as db:
            await worker(db)

    extra = min(settings.rerank_apply_connections, len(bounds)) - 1
    async with asyncio.TaskGroup() as group:
        group.create_task(worker(conn))
        for _ in range(extra):
            group.create_task(pooled_worker())
    return skipped


async def _claim(conn: AsyncConnection, settings: Settings, only_if_due: bool) -> bool:
    """Clear the pending request this run serves; a change after this schedules the next."""
    due = (
        "AND (due_at <= now() OR last_run_at IS NULL "
        "OR last_run_at <= now() - make_interval(secs => :every))"
        if only_if_due
        else ""
    )
    # NOWAIT-free: a batch holds the row only for its own short transaction.
    claimed = await conn.execute(
        sa.text(
            f"UPDATE recompute_state SET due_at = NULL, first_requested_at = NULL "
            f"WHERE name = 'rerank' {due} RETURNING 1"
        ),
        {"every": settings.rerank_every_s} if only_if_due else {},
    )
    return claimed.first() is not None


async def lock_state(session: AsyncSession) -> None:
    """Wait for the re-rank run, then for the state row (batches take only the row).

    Always in this order, as the background run (its advisory lock, then the row to claim),
    so the two never deadlock; in-transaction re-ranks and rebuilds take both."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": RERANK_LOCK})
    await session.execute(sa.text("SELECT 1 FROM recompute_state WHERE name = 'rerank' FOR UPDATE"))


async def try_lock_rerank(session: AsyncSession) -> bool:
    """Whether no background re-rank runs now (then it cannot start until this tx ends)."""
    got = await session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RERANK_LOCK})
    return bool(got)


async def rerank_if_due(settings: Settings, engine: AsyncEngine) -> bool:
    """Run the re-rank when due and no other replica runs it; whether it ran."""
    async with engine.connect() as conn:  # a plain read first: no lock while nothing is due
        due = await conn.scalar(
            sa.text(
                "SELECT true FROM recompute_state WHERE name = 'rerank' AND (due_at <= now() "
                "OR last_run_at IS NULL "
                "OR last_run_at <= now() - make_interval(secs => :every))"
            ),
            {"every": settings.rerank_every_s},
        )
    if not due:
        return False
    return await rerank_concurrently(engine, settings, only_if_due=True) is not None
