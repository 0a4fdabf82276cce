"""The analytics service: `uvicorn services.analytics.main:create_app --factory`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.api import admin_router, router
from services.analytics.api_reports import router as reports_router
from services.analytics.case_api import router as case_router
from services.analytics.catchup import catch_up, feed_clients
from services.analytics.config import Settings
from services.analytics.gdpr import GDPR
from services.analytics.models import audit_log, inbox, outbox
from services.analytics.privacy import PRIVACY
from services.analytics.projection import EVENT_TYPES, handle_batch, validate_ahead
from services.analytics.recompute import rerank_if_due
from shared.app import ServiceSpec, create_service_app
from shared.consumer import ConsumerRunner
from shared.contracts import ANALYTICS_TOPIC
from shared.db import create_engine, session_factory
from shared.events.envelope import CloudEvent

logger = logging.getLogger("kehu.analytics")

DESCRIPTION = """\
Read models:
ABC tiers, RFM, lifecycle, churn risk, satisfaction and complaint aggregates.

Every figure is computed from the events of profiles, interactions, complaints and loyalty
(consumer group `analytics`), so it lags the source by the pipeline's delay (well under a
second when idle). Tiers and RFM are re-ranked globally a few seconds after changes settle.
Should the broker lose records, the figures still converge: every `ANALYTICS_CATCHUP_EVERY_S`
the service reads the sources' `GET /events` feeds for events older than
`ANALYTICS_CATCHUP_GRACE_S` that Kafka did not deliver, and applies each event once whichever
path brings it.

Metric definitions (trailing 365-day window ending now unless a request says otherwise):

- **Money** is only ever in the reporting currency (`KEHU_REPORTING_CURRENCY`, default CNY):
  interactions converts a purchase or refund in another currency when it is recorded, and the
  figures below add those converted amounts; a foreign purchase without them is left out.
- **Profit contribution** = sum of the margin of the customer's purchases in the window minus the
  margin of refunds in the window; cancelled purchases (and refunds of them) do not count.
  **Revenue** = the same with amounts.
- **ABC tier**: customers sorted by contribution descending, then customer id ascending;
  `before_i` = summed positive contribution ranked before customer i, `total` = summed positive
  contribution of all. A if `before_i / total < 0.80`, else B if `< 0.95`, else C; contribution
  <= 0 is always C. The thresholds are settings (`ANALYTICS_TIER_A_SHARE`, `..._B_SHARE`).
- **RFM**: recency = days since the last purchase, frequency = purchases in the window,
  monetary = revenue in the window; each scored 1-5 by rank among customers with a purchase in
  the window: ordered worst first, position p of n, score = floor(5 x (p - 1) / n) + 1, tied
  values all taking the position of the first of them (ties share the lowest score: in a base
  of mostly one-time buyers a one-time buyer has F = 1); plus a segment.
- **CSAT**: per question (1-5) and dimension, the share of answers >= 4 in percent, with count
  and mean. **NPS** = % promoters (9-10) minus % detractors (0-6).

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
"""


def consumer_task(settings: Settings) -> Callable[[FastAPI], Coroutine[Any, Any, None]]:
    """Run the batch-mode consumer as a background task (it shows in readiness like others)."""

    async def batch(session: AsyncSession, events: list[CloudEvent]) -> None:
        incremental = len(events) <= settings.incremental_max_batch
        await handle_batch(session, events, settings, incremental=incremental)

    async def run(app: FastAPI) -> None:
        if not settings.consumer_enabled:
            return
        runner = ConsumerRunner(
            settings,
            app.state.engine,
            inbox,
            settings.consumer_group,
            settings.consumed_topics,
            {},
            batch_handler=batch,
            batch_types=EVENT_TYPES,
            raw_data=True,
            prepare=validate_ahead,
        )
        app.state.consumers.append(runner)
        app.state.analytics_consumer = runner
        runner.start()
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await runner.stop()

    return run


def rerank_pool(settings: Settings) -> Settings:
    """The re-rank's own small pool: a client timeout that fits a full re-rank, and a
    connection for each step it runs at once (a full run's stage takes two, the apply
    `rerank_apply_connections`); with fewer, a step would wait for a connection the run
    itself holds until the pool gives up."""
    return settings.model_copy(
        update={
            "db_statement_timeout_ms": settings.rerank_statement_timeout_ms,
            "db_pool_size": max(2, settings.rerank_apply_connections),
            "db_pool_overflow": 0,
        }
    )


def rerank_task(settings: Settings) -> Callable[[FastAPI], Coroutine[Any, Any, None]]:
    """The debounced re-rank, on its own pool (`rerank_pool`); it runs beside the consumer
    (short transactions), never holding rows a batch waits for."""
    long_settings = rerank_pool(settings)

    async def run(app: FastAPI) -> None:
        engine = create_engine(long_settings)
        try:
            while True:
                try:
                    await rerank_if_due(settings, engine)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("analytics re-rank failed; retrying")
                await asyncio.sleep(settings.rerank_poll_s)
        finally:
            await engine.dispose()

    return run


def catchup_task(settings: Settings) -> Callable[[FastAPI], Coroutine[Any, Any, None]]:
    """Every `catchup_every_s`, read the source feeds for events Kafka did not deliver."""

    async def run(app: FastAPI) -> None:
        if not settings.consumer_enabled or not settings.catchup_every_s:
            return
        clients = feed_clients(settings)
        sessions = session_factory(app.state.engine)
        try:
            while True:
                await asyncio.sleep(settings.catchup_every_s)
                feeds = getattr(app.state, "feed_clients", None) or clients  # tests inject
                try:
                    app.state.last_catchup = await catch_up(sessions, settings, feeds)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("analytics catch-up failed; retrying")
        finally:
            for client in clients.values():
                await client.aclose()

    return run


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        ServiceSpec(
            name="analytics",
            title="Kehu analytics",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=[router, case_router, reports_router, admin_router],
            publishes=[ANALYTICS_TOPIC],
            background=[
                consumer_task(settings),
                rerank_task(settings),
                catchup_task(settings),
            ],
            audit=audit_log,
            privacy=PRIVACY,
            gdpr=GDPR,
            openapi_tags=[
                {"name": "insights", "description": "One customer's tier, RFM, lifecycle, risk."},
                {"name": "tiers", "description": "ABC tiers and RFM segments."},
                {"name": "satisfaction", "description": "CSAT, NPS, effort, against targets."},
                {"name": "complaints", "description": "Complaint volume, SLA, durations."},
                {"name": "cases", "description": "Service-desk cases of every type by type."},
                {"name": "churn", "description": "Customers ranked by churn risk."},
                {
                    "name": "staff",
                    "description": "Staff and service quality: staff performance and the "
                    "management report.",
                },
                {"name": "admin", "description": "Rebuild and recompute (scope admin:write)."},
                {
                    "name": "gdpr",
                    "description": "What analytics holds about a customer, with the metric "
                    "definitions, and whether it erased them.",
                },
            ],
        )
    )
