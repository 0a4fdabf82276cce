"""The global re-rank: every customer's facts, lifecycle, churn risk, ABC tier and RFM.

Debounced: consumer batches push `recompute_state.due_at` out; a background job on every
replica claims the row with `FOR UPDATE SKIP LOCKED` once it is due (or once `rerank_every_s`
passed, since inactivity measures change with time alone), so one replica runs it at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.config import Settings
from services.analytics.metrics_sql import (
    Clock,
    lifecycle_and_churn,
    rank_abc,
    refresh_facts,
    score_rfm,
)


@dataclass(frozen=True)
class RerankResult:
    as_of: datetime
    tier_events: int
    lifecycle_events: int
    churn_events: int
    rfm_rows: int
    duration_ms: int


async def rerank(
    session: AsyncSession, settings: Settings, as_of: datetime | None = None
) -> RerankResult:
    """Recompute every projection-derived value at `as_of` (default now), in the caller's tx."""
    started = time.perf_counter()
    await lock_state(session)  # before any customer row: batches lock in the same order
    await session.execute(
        sa.text(f"SET LOCAL statement_timeout = {int(settings.rerank_statement_timeout_ms)}")
    )
    await session.execute(sa.text(f"SET LOCAL work_mem = '{settings.rerank_work_mem}'"))
    if as_of is None:
        as_of = (await session.execute(sa.select(sa.func.now()))).scalar_one()
    clock = Clock.at(as_of, settings)
    await refresh_facts(session, clock)
    lifecycle, churn = await lifecycle_and_churn(session, clock, settings)
    tiers = await rank_abc(session, clock, settings)
    rfm = await score_rfm(session, clock)
    duration_ms = int((time.perf_counter() - started) * 1000)
    await session.execute(
        sa.text(
            "UPDATE recompute_state SET due_at = NULL, first_requested_at = NULL, "
            "last_run_at = :as_of, last_duration_ms = :ms WHERE name = 'rerank'"
        ),
        {"as_of": as_of, "ms": duration_ms},
    )
    return RerankResult(as_of, tiers, lifecycle, churn, rfm, duration_ms)


async def lock_state(session: AsyncSession) -> None:
    """Wait for the re-rank row: batches, re-ranks and rebuilds take it first, one at a time."""
    await session.execute(sa.text("SELECT 1 FROM recompute_state WHERE name = 'rerank' FOR UPDATE"))


async def try_lock_state(session: AsyncSession) -> bool:
    """Take the re-rank row if free right now (requests must not queue behind a rebuild)."""
    claimed = await session.execute(
        sa.text("SELECT 1 FROM recompute_state WHERE name = 'rerank' FOR UPDATE SKIP LOCKED")
    )
    return claimed.first() is not None


async def rerank_if_due(settings: Settings, session: AsyncSession) -> bool:
    """Run the re-rank when due and no batch holds the state row; whether it ran."""
    claimed = await session.execute(
        sa.text(
            """
            SELECT 1 FROM recompute_state
            WHERE name = 'rerank'
              AND (due_at <= now() OR last_run_at IS NULL
                   OR last_run_at <= now() - make_interval(secs => :every))
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"every": settings.rerank_every_s},
    )
    if claimed.first() is None:
        return False
    await rerank(session, settings)
    return True
