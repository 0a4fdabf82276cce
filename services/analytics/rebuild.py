"""Rebuild every projection from the other services' event feeds (`GET /events`).

`python -m services.analytics.rebuild` (or `POST /admin/rebuild`). In one transaction: the
derived values (tiers, stages, risk) are set aside, the projection tables emptied, each feed
replayed from the start through the consumer's own batch code, the event ids recorded in the
inbox (so the live consumer skips what the rebuild applied), the set-aside values restored and
a global re-rank run: it publishes only the values that differ from before the rebuild.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import models as m
from services.analytics.config import Settings
from services.analytics.errors import RebuildFailed
from services.analytics.projection import EVENT_TYPES, handle_batch
from services.analytics.recompute import RerankResult, lock_state, rerank
from shared.auth import issue_token
from shared.consumer import claim
from shared.db import create_engine, session_factory
from shared.events.envelope import CloudEvent

logger = logging.getLogger("kehu.analytics.rebuild")
DERIVED = (
    "tier",
    "rfm_recency_days",
    "rfm_r",
    "rfm_f",
    "rfm_m",
    "rfm_segment",
    "lifecycle_stage",
    "churn_score",
    "churn_level",
    "churn_reasons",
)


@dataclass(frozen=True)
class RebuildResult:
    events: dict[str, int]
    customers: int
    duration_ms: int
    rerank: RerankResult


def feed_urls(settings: Settings) -> dict[str, str]:
    return {
        "profiles": settings.profiles_url,
        "interactions": settings.interactions_url,
        "complaints": settings.complaints_url,
        "loyalty": settings.loyalty_url,
    }


async def read_feed(
    client: httpx.AsyncClient, name: str, token: str, page_size: int, after: int = 0
) -> AsyncIterator[list[CloudEvent]]:
    """Pages of one service's event log, oldest first, after feed position `after`."""
    while True:
        try:
            response = await client.get(
                "/events",
                params={"after": str(after), "limit": page_size, "type": sorted(EVENT_TYPES)},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise RebuildFailed(f"{name} feed unreachable: {exc}") from exc
        if response.status_code != 200:
            raise RebuildFailed(f"{name} feed answered {response.status_code}")
        page = response.json()
        items = [CloudEvent.model_validate(item) for item in page["items"]]
        if not items:
            return
        yield items
        after = int(page["next_after"])


async def positions(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(sa.select(m.feed_positions.c.source, m.feed_positions.c.position))
    return {source: int(position) for source, position in rows.all()}


async def save_position(session: AsyncSession, source: str, position: int) -> None:
    stmt = insert(m.feed_positions).values(
        source=source, position=position, checked_at=sa.func.now()
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[m.feed_positions.c.source],
            set_={"position": stmt.excluded.position, "checked_at": stmt.excluded.checked_at},
        )
    )


async def rebuild(
    session: AsyncSession, settings: Settings, clients: Mapping[str, httpx.AsyncClient]
) -> RebuildResult:
    """Replay every feed into empty projections, in the caller's transaction."""
    started = time.perf_counter()
    token = issue_token(settings, "admin", subject="analytics-rebuild")
    await session.execute(sa.text("SET LOCAL statement_timeout = 0"))
    await lock_state(session)
    columns = ", ".join(DERIVED)
    await session.execute(
        sa.text(
            f"CREATE TEMP TABLE derived_before ON COMMIT DROP AS "
            f"SELECT customer_id, {columns} FROM customer_facts"
        )
    )
    # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would block every reader until commit.
    for table in m.PROJECTION_TABLES:
        await session.execute(sa.delete(table))
    counts: dict[str, int] = {}
    for name, client in clients.items():
        counts[name] = 0
        async for events in read_feed(client, name, token, settings.rebuild_page_size):
            counts[name] += len(events)
            await save_position(session, name, int(events[-1].sequence or 0))
            await handle_batch(session, events, settings, incremental=False)
            relevant = [e for e in events if e.type in EVENT_TYPES]
            await claim(session, m.inbox, settings.consumer_group, relevant)
    assignments = ", ".join(f"{c} = d.{c}" for c in DERIVED)
    await session.execute(
        sa.text(
            f"UPDATE customer_facts f SET {assignments} FROM derived_before d "
            f"WHERE f.customer_id = d.customer_id"
        )
    )
    result = await rerank(session, settings)
    customers = await session.scalar(sa.select(sa.func.count()).select_from(m.customer_facts))
    return RebuildResult(
        events=counts,
        customers=int(customers or 0),
        duration_ms=int((time.perf_counter() - started) * 1000),
        rerank=result,
    )


@dataclass
class RebuildJobState:
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    result: RebuildResult | None = None
    error: str | None = None


def start_job(
    settings: Settings, clients: Mapping[str, httpx.AsyncClient] | None
) -> tuple[RebuildJobState, asyncio.Task[None]]:
    """Run a rebuild in the background on its own long-timeout pool; its state updates live."""
    state = RebuildJobState("running", datetime.now(UTC))

    async def run() -> None:
        owned = []
        feeds = clients
        if feeds is None:
            feeds = {n: httpx.AsyncClient(base_url=u) for n, u in feed_urls(settings).items()}
            owned = list(feeds.values())
        long = create_engine(
            settings.model_copy(
                update={
                    "db_statement_timeout_ms": settings.rerank_statement_timeout_ms,
                    "db_pool_size": 1,
                }
            )
        )
        try:
            async with session_factory(long).begin() as session:
                state.result = await rebuild(session, settings, feeds)
            state.status = "succeeded"
        except Exception as exc:  # reported through the job, never lost in a log only
            logger.exception("rebuild failed")
            state.status, state.error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
        finally:
            state.finished_at = datetime.now(UTC)
            for client in owned:
                await client.aclose()
            await long.dispose()

    return state, asyncio.create_task(run(), name="analytics-rebuild")


async def main() -> None:
    """The command: rebuild against the feeds named in Settings and print a JSON summary."""
    settings = Settings()
    engine = create_engine(
        settings.model_copy(
            update={"db_statement_timeout_ms": settings.rerank_statement_timeout_ms}
        )
    )
    clients = {name: httpx.AsyncClient(base_url=url) for name, url in feed_urls(settings).items()}
    try:
        async with session_factory(engine).begin() as session:
            result = await rebuild(session, settings, clients)
    finally:
        for client in clients.values():
            await client.aclose()
        await engine.dispose()
    print(
        json.dumps(
            {
                "events": result.events,
                "customers": result.customers,
                "duration_ms": result.duration_ms,
                "tier_events": result.rerank.tier_events,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
