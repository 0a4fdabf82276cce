"""The common furniture of every Kehu service: one factory builds each FastAPI app.

`create_service_app` wires settings, the database engine, auth, problem+json, request ids,
JSON logs, metrics, health, the event feed, the outbox relay and the service's consumers.
Everything that connects is built in the lifespan, so tests can build an app per configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from shared import metrics
from shared.asyncapi import docs_router
from shared.audit import audit_router
from shared.auth import TokenVerifier, require
from shared.consumer import BatchHandler, ConsumerRunner, EventHandler
from shared.context import SYSTEM_CLOCK
from shared.db import SessionDep, create_engine, session_factory
from shared.edge import EdgeMiddleware
from shared.events.envelope import CloudEvent
from shared.gdpr import GdprSpec, gdpr_router
from shared.idempotency import DEFAULT_SEAL_CONTEXT
from shared.logs import configure_logging
from shared.openapi import install_docs_pages, install_openapi
from shared.outbox import Outbox, OutboxRelay, read_feed, wake_relay_on_commit
from shared.privacy import Privacy
from shared.problems import install_handlers, problem_responses
from shared.settings import ServiceSettings
from shared.wake import WORKER_SOCKET, WakeSender, listen_for_wakes

logger = logging.getLogger("kehu.app")

BackgroundTask = Callable[[FastAPI], Coroutine[Any, Any, None]]


@dataclass
class ConsumerSpec:
    group_id: str
    topics: Sequence[str]
    handlers: dict[str, EventHandler]
    # Set-based consumers: one call per batch of new events (of `batch_types`, or every type).
    batch_handler: BatchHandler | None = None
    batch_types: Collection[str] | None = None


@dataclass
class ServiceSpec:
    """What makes one service different from the others."""

    name: str
    title: str
    description: str
    settings: ServiceSettings
    outbox: sa.Table
    inbox: sa.Table
    routers: Sequence[APIRouter] = ()
    publishes: Sequence[str] = ()
    consumers: Sequence[ConsumerSpec] = ()
    background: Sequence[BackgroundTask] = ()
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    audit: sa.Table | None = None  # the service's audit_log table, served at GET /audit
    # Its personal-data declaration: masking and audit through the request context.
    privacy: Privacy | None = None
    idempotency: sa.Table | None = None  # its idempotency_keys table
    idempotency_seal_context: str = DEFAULT_SEAL_CONTEXT
    gdpr: GdprSpec | None = None  # per-customer export and erasure status, mounted if set


class FeedPage(BaseModel):
    """A page of the event log, oldest first."""

    items: list[CloudEvent]
    next_after: str = Field(
        description="Pass as `after` to read on. Equal to the request's `after` when nothing "
        "newer exists yet: poll again later with the same value."
    )


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="Liveness: the process is up")
    async def live() -> dict[str, str]:
        return {"status": "pass"}

    @router.get(
        "/health/ready",
        summary="Readiness: database, broker and consumer progress",
        responses={503: {"description": "Not ready; `checks` says which dependency fails"}},
    )
    async def ready(request: Request) -> JSONResponse:
        checks = await readiness_checks(request.app)
        ok = all(c["status"] == "pass" for c in checks.values())
        return JSONResponse(
            {"status": "pass" if ok else "fail", "checks": checks},
            status_code=200 if ok else 503,
        )

    return router


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}


async def readiness_checks(app: FastAPI) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        async with app.state.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(sa.text("SELECT 1")), 3)
        checks["database"] = {"status": "pass"}
    except Exception as exc:
        checks["database"] = _failure(exc)
    settings: ServiceSettings = app.state.settings
    if settings.role == "api":
        # The broker and the consumers are the worker's: its own readiness, read over its
        # socket when it runs beside this process (shared.serve); else its own probes say.
        if settings.run_dir is not None:
            checks.update(await worker_checks(settings.run_dir))
        return checks
    relay: OutboxRelay = app.state.relay
    broker_ok = await relay.broker_reachable()
    checks["broker"] = {"status": "pass" if broker_ok else "fail", "error": relay.last_error}
    for runner in app.state.consumers:
        ok, detail = runner.healthy()
        checks[f"consumer:{runner.group_id}"] = {"status": "pass" if ok else "fail", **detail}
    return checks


async def worker_checks(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The readiness checks of the service's worker process, but its database check."""
    transport = httpx.AsyncHTTPTransport(uds=str(run_dir / WORKER_SOCKET))
    try:
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            body = (await client.get("http://worker/health/ready")).json()
        checks = {name: check for name, check in body["checks"].items() if name != "database"}
    except Exception as exc:
        return {"worker": _failure(exc)}
    return {"worker": {"status": "pass"}, **checks}


def events_router(outbox: sa.Table) -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.get(
        "/events",
        summary="Pull feed of this service's events",
        response_model=FeedPage,
        responses=problem_responses(400, 401, 403, 422),
    )
    async def feed(
        session: SessionDep,
        _: Annotated[Any, require("events:read")],
        after: Annotated[
            str,
            Query(
                pattern=r"^\d{1,18}$",
                description="Cursor: the `sequence` of the last "
                "event you processed; `0` reads from the start of the retained log.",
            ),
        ] = "0",
        type: Annotated[
            list[str] | None,
            Query(
                description="Only these event types (repeat the parameter for several).",
                examples=["kehu.customer.created.v1"],
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> FeedPage:
        """The service's event log as structured CloudEvents, oldest first.

        Every event the service published is kept for the retention period, in the order of
        its `sequence`. Read from `after=0`, process the page, then ask again with
        `after=<next_after>`. The feed never skips an event: an event appears only once its
        sequence is final. Needs the `events:read` scope.
        """
        items = await read_feed(session, outbox, int(after), limit, type)
        return FeedPage(items=items, next_after=items[-1].sequence if items else after)

    return router


async def _bounded(step: str, work: Coroutine[Any, Any, Any], timeout: float) -> None:
    """Run one shutdown step for at most `timeout` seconds; a stuck step is named and skipped.

    A stop that waits forever on a dead broker or database would keep the process (and its
    orchestrator's rollout) hanging; everything these steps release dies with the process.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        logger.warning("shutdown: %s did not stop within %.0fs; moving on", step, timeout)
    elif not task.cancelled() and task.exception() is not None:
        logger.warning("shutdown: %s failed: %r", step, task.exception())


# Allocations between two young-generation collections (CPython's default is 700): a request
# allocates thousands of containers, so the default collects several times per request and
# promotes the objects of the requests in flight to the older generations.
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Keep the cyclic collector's pauses off the request path, once the app has started.

    The start-up heap (modules, routes, models, pydantic validators: ~140,000 objects) goes to
    the permanent generation (`gc.freeze`), which no collection scans. Without it, a loaded
    interactions worker ran a full collection every 3-9 s, each 120-690 ms on the shared bench
    machine with every request in flight waiting; with it, none ran while it served. The young
    generation is collected every `GC_YOUNG_THRESHOLD` allocations instead of 700: a consumer
    batch's tens of thousands of objects (records, events, rows) otherwise lived through many
    young collections and set off a full one about once a batch (a quarter of the analytics
    drain's CPU)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    if not any(isinstance(c, metrics.GcTimer) for c in gc.callbacks):
        gc.callbacks.append(metrics.GcTimer())  # kehu_gc_pause_seconds


def create_service_app(spec: ServiceSpec) -> FastAPI:
    settings = spec.settings
    configure_logging(settings.service_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.token_verifier = TokenVerifier(settings)
        app.state.privacy = spec.privacy
        app.state.idempotency_table = spec.idempotency
        app.state.idempotency_seal_context = spec.idempotency_seal_context
        if not hasattr(app.state, "clock"):
            app.state.clock = SYSTEM_CLOCK
        app.state.outbox = Outbox(spec.outbox, f"/kehu/{spec.name}")
        app.state.relay = relay = OutboxRelay(settings, engine, spec.outbox, set(spec.publishes))
        background = settings.role != "api"  # relay, consumers and schedulers run here
        # A commit that wrote events wakes the relay: this process's own, or its worker's.
        sender = WakeSender(settings.run_dir) if settings.run_dir and not background else None
        wake_relay_on_commit(spec.outbox, relay.wake if background else sender)
        app.state.consumers = [
            ConsumerRunner(
                settings,
                engine,
                spec.inbox,
                c.group_id,
                c.topics,
                c.handlers,
                batch_handler=c.batch_handler,
                batch_types=c.batch_types,
            )
            for c in spec.consumers
            if background
        ]

        async def refresh_metrics() -> None:
            with contextlib.suppress(Exception):
                backlog, age = await relay.backlog()
                metrics.OUTBOX_BACKLOG.labels(spec.name).set(backlog)
                metrics.OUTBOX_OLDEST_AGE.labels(spec.name).set(age or 0)

        app.state.refresh_metrics = refresh_metrics
        wakes = None
        if background:
            relay.start()
            if settings.run_dir is not None:  # the API processes beside it wake its relay
                wakes = await listen_for_wakes(settings.run_dir, relay.wake)
        for runner in app.state.consumers:
            runner.start()
        tasks = [asyncio.create_task(task(app)) for task in spec.background if background]
        settle_heap()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            bound = settings.shutdown_step_timeout_s
            if tasks:
                await _bounded("background jobs", asyncio.wait(tasks), bound)
            for runner in app.state.consumers:
                await _bounded(f"consumer {runner.group_id}", runner.stop(), bound)
            if wakes is not None:
                wakes.close()
            if sender is not None:
                sender.close()
            await _bounded("outbox relay", relay.stop(), bound)
            await _bounded("database pool", engine.dispose(), bound)
            metrics.process_stopped()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs_pages, with no CDN
        redoc_url=None,
        openapi_tags=[
            *spec.openapi_tags,
            {"name": "events", "description": "The service's event log as a pull feed."},
            {"name": "health", "description": "Liveness, readiness and metrics; no auth."},
        ],
    )
    install_handlers(app)
    install_openapi(app)
    # Request id, body size, rate limit and metrics in one layer (shared.edge).
    app.add_middleware(
        EdgeMiddleware,
        service=spec.name,
        max_bytes=settings.max_body_bytes,
        overrides=settings.body_limit_overrides,
        rate=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
    )
    for router in spec.routers:
        app.include_router(router)
    app.include_router(events_router(spec.outbox))
    app.include_router(docs_router())
    if spec.audit is not None:
        app.include_router(audit_router(spec.audit))
    if spec.gdpr is not None:
        app.include_router(gdpr_router(spec.gdpr))
    app.include_router(health_router())
    # The docs pages after the API: a request is matched against the routes in order.
    install_docs_pages(app)
    app.add_route("/metrics", metrics.metrics_endpoint, include_in_schema=False)
    return app
