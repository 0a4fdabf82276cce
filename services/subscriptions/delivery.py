"""Webhook delivery: enqueue matching events, send them signed, retry, disable dead endpoints.

Ordering: for each subscription, one customer's events go out one at a time in the order they
were enqueued (the order this service consumed them, which per publishing service is the order
they happened). A delivery is claimed only when no earlier delivery of the same subscription
and customer is still pending, so a receiver never has to reorder; the price is that one
customer's later events wait while an earlier one is retried (other customers are unaffected).
Every body also carries `time` and `sequence` for receivers that process in parallel.

Replica-safe: due deliveries are claimed with `FOR UPDATE SKIP LOCKED` and leased (their
`next_attempt_at` moves past the HTTP timeout) in a short transaction; the results are recorded
in a second one. A worker that dies mid-flight leaves the lease to expire and the delivery is
tried again: at least once, deduplicated by receivers on `webhook-id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.config import Settings
from services.subscriptions.models import (
    PREVIOUS_SECRET_CONTEXT,
    SECRET_CONTEXT,
    deliveries,
    delivery_attempts,
    subscriptions,
)
from services.subscriptions.safety import Network, check_target, parse_networks
from services.subscriptions.signing import signature_header
from shared import scheduler
from shared.contracts.subscriptions import DisabledReason, SubscriptionDisabled
from shared.crypto import EncryptedText
from shared.events.envelope import CloudEvent
from shared.outbox import Outbox
from shared.problems import ProblemError

logger = logging.getLogger("kehu.subscriptions.delivery")
EXCERPT_CHARS = 500
USER_AGENT = "Kehu-Webhooks/1.0"
PRUNE_BATCH = 1000

WEBHOOK_ATTEMPTS = Counter(
    "kehu_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, http_error, network_error, refused)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "kehu_webhook_attempt_duration_seconds",
    "Webhook attempt latency",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# One statement per consumed batch: every event against every enabled subscription it matches,
# in the batch's order (so `seq` keeps each customer's events in order).
ENQUEUE_SQL = sa.text(
    """
    INSERT INTO deliveries (id, subscription_id, event_id, event_type, ordering_key, payload,
                            status, attempt_count, next_attempt_at, last_error, completed_at)
    SELECT gen_random_uuid(), s.id, e.event_id, e.event_type, e.ordering_key,
           CAST(e.payload AS jsonb), e.status, 0, now(), e.error,
           CASE WHEN e.status = 'failed' THEN now() END
    FROM unnest(CAST(:event_ids AS text[]), CAST(:event_types AS text[]),
                CAST(:ordering_keys AS text[]), CAST(:payloads AS text[]),
                CAST(:statuses AS text[]), CAST(:errors AS text[]))
         WITH ORDINALITY AS e(event_id, event_type, ordering_key, payload, status, error, n)
    JOIN subscriptions s ON s.enabled
      AND EXISTS (SELECT 1 FROM unnest(s.type_like) AS p(pattern)
                  WHERE e.event_type LIKE p.pattern)
      AND (s.customer_ids IS NULL OR e.ordering_key = ANY(s.customer_ids))
    ORDER BY e.n, s.id
    ON CONFLICT (subscription_id, event_id) DO NOTHING
    """
)

CLAIM_SQL = sa.text(
    """
    WITH due AS (
        SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.enabled
          AND NOT EXISTS (
              SELECT 1 FROM deliveries e
              WHERE e.subscription_id = d.subscription_id AND e.ordering_key = d.ordering_key
                AND e.status = 'pending' AND e.seq < d.seq)
        ORDER BY d.next_attempt_at, d.seq
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, subscriptions s
    WHERE d.id = due.id AND s.id = d.subscription_id
    RETURNING d.id, d.subscription_id, d.payload, d.attempt_count, s.url, s.secret,
              s.previous_secret, s.previous_secret_expires_at
    """
).columns(  # the secrets are sealed at rest: opened as they are read
    secret=EncryptedText(SECRET_CONTEXT), previous_secret=EncryptedText(PREVIOUS_SECRET_CONTEXT)
)


def like_pattern(pattern: str) -> str:
    """An event-type filter (`*` = anything) as a SQL LIKE pattern."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def event_body(event: CloudEvent) -> dict[str, Any]:
    """The structured-mode CloudEvent sent as the webhook body."""
    return event.model_dump(mode="json", exclude_none=True)


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def active_secrets(secret: str, previous: str | None, previous_expires: datetime | None) -> list:
    """The secrets that sign now: the current one, and the previous one during its grace."""
    if previous and previous_expires is not None and previous_expires > datetime.now(UTC):
        return [secret, previous]
    return [secret]


async def enqueue(session: AsyncSession, events: Sequence[CloudEvent], settings: Settings) -> None:
    """Queue each of `events` for every enabled subscription whose filters match (one statement
    for the consumer's whole batch)."""
    if not events:
        return
    rows: dict[str, list[str | None]] = {
        "event_ids": [],
        "event_types": [],
        "ordering_keys": [],
        "payloads": [],
        "statuses": [],
        "errors": [],
    }
    limit = settings.webhook_max_payload_bytes
    for event in events:
        body = encode_body(event_body(event))
        too_big = len(body) > limit
        rows["event_ids"].append(event.id)
        rows["event_types"].append(event.type)
        rows["ordering_keys"].append(event.subject or str(event.data.get("customer_id") or ""))
        rows["payloads"].append(body.decode())
        rows["statuses"].append("failed" if too_big else "pending")
        rows["errors"].append(
            f"payload of {len(body)} bytes exceeds the {limit}-byte limit; read it from the "
            "event feed"
            if too_big
            else None
        )
    await session.execute(ENQUEUE_SQL, rows)


@dataclass
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str | None
    attempted_at: datetime

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def outcome(self) -> str:
        if self.ok:
            return "succeeded"
        if self.status_code is not None:
            return "http_error"
        return "refused" if (self.error or "").startswith("refused") else "network_error"


class Sender:
    """Sends one signed webhook; never raises for the endpoint's failures."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.allowed: list[Network] = parse_networks(settings.webhook_allowed_networks)
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s
            ),
            follow_redirects=False,  # a redirect could lead anywhere, past the SSRF check
            trust_env=False,
            limits=httpx.Limits(max_connections=settings.delivery_concurrency * 2),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(
        self, url: str, msg_id: str, payload: dict[str, Any], secrets: list[str]
    ) -> AttemptResult:
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()

        def result(status: int | None, error: str | None, excerpt: str | None) -> AttemptResult:
            latency = int((time.perf_counter() - started) * 1000)
            return AttemptResult(status, latency, error, excerpt, attempted_at)

        try:
            addresses = await check_target(url, self.allowed)
        except ProblemError as exc:
            return result(None, f"refused: {exc.detail}", None)
        # Connect to the address just checked, not to whatever a second lookup returns.
        target = httpx.URL(url)
        pinned = target.copy_with(host=str(addresses[0]))
        body = encode_body(payload)
        timestamp = int(time.time())
        headers = {
            "host": target.netloc.decode("ascii"),
            "content-type": "application/cloudevents+json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        }
        try:
            # httpx's timeouts are per operation; this bounds the whole exchange, so a receiver
            # that trickles its answer cannot hold a worker slot.
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                async with self.client.stream(
                    "POST",
                    pinned,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": target.host},
                ) as response:
                    excerpt = await _read_excerpt(response)
        except TimeoutError:
            return result(None, f"timed out after {self.settings.webhook_timeout_s}s", None)
        except httpx.HTTPError as exc:
            return result(None, f"{type(exc).__name__}: {exc}"[:500], None)
        except Exception as exc:  # never lose a batch's results to one odd endpoint
            logger.warning("webhook to %s failed unexpectedly: %r", url, exc)
            return result(None, f"{type(exc).__name__}: {exc}"[:500], None)
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return result(response.status_code, error, excerpt)


async def _read_excerpt(response: httpx.Response) -> str | None:
    """The start of the response body; the rest is never read (a receiver could stream GBs)."""
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks.extend(chunk)
        if len(chunks) >= EXCERPT_CHARS * 4:
            break
    return chunks.decode(errors="replace")[:EXCERPT_CHARS] or None


def retry_delay(settings: Settings, attempts_made: int) -> float | None:
    """Seconds until the next try after `attempts_made` failed ones; None when exhausted."""
    schedule = settings.webhook_retry_schedule_s
    if attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    jitter = settings.webhook_retry_jitter
    return base * random.uniform(1 - jitter, 1 + jitter)


async def disable_subscription(
    session: AsyncSession,
    outbox: Outbox,
    subscription_id: uuid.UUID,
    reason: DisabledReason,
    detail: str,
    failing_since: datetime | None,
    last_status_code: int | None,
) -> bool:
    """Disable an enabled subscription and publish `subscription.disabled` (once)."""
    s = subscriptions
    now = datetime.now(UTC)
    changed = await session.execute(
        sa.update(s)
        .where(s.c.id == subscription_id, s.c.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=reason,
            disabled_at=now,
            updated_at=now,
            version=s.c.version + 1,
        )
        .returning(s.c.id)
    )
    if changed.first() is None:
        return False
    logger.warning("disabled subscription %s: %s (%s)", subscription_id, reason, detail)
    await outbox.emit(
        session,
        SubscriptionDisabled(
            subscription_id=subscription_id,
            reason=reason,
            detail=detail,
            failing_since=failing_since,
            last_status_code=last_status_code,
            occurred_at=now,
        ),
    )
    return True


async def record_attempt(
    session: AsyncSession,
    outbox: Outbox,
    settings: Settings,
    delivery_id: uuid.UUID,
    subscription_id: uuid.UUID,
    attempt: int,
    result: AttemptResult,
    *,
    retry: bool = True,
) -> str | None:
    """Log one attempt and move the delivery on; returns its new status (None if it is gone)."""
    WEBHOOK_ATTEMPTS.labels(result.outcome).inc()
    WEBHOOK_LATENCY.observe(result.latency_ms / 1000)
    d = deliveries
    if result.ok:
        status, next_at = "succeeded", None
    elif result.status_code == 410 or not retry:
        status, next_at = "failed", None
    else:
        delay = retry_delay(settings, attempt)
        status = "pending" if delay is not None else "failed"
        next_at = result.attempted_at + timedelta(seconds=delay) if delay is not None else None
    values: dict[str, Any] = {
        "status": status,
        "attempt_count": attempt,
        "last_attempt_at": result.attempted_at,
        "last_status_code": result.status_code,
        "last_error": result.error,
    }
    if next_at is not None:
        values["next_attempt_at"] = next_at
    if status != "pending":
        values["completed_at"] = datetime.now(UTC)
    updated = await session.execute(
        sa.update(d).where(d.c.id == delivery_id).values(**values).returning(d.c.id)
    )
    if updated.first() is None:
        return None  # the subscription was deleted meanwhile
    await session.execute(
        sa.insert(delivery_attempts).values(
            delivery_id=delivery_id,
            attempt=attempt,
            attempted_at=result.attempted_at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.excerpt,
        )
    )
    if not retry:
        return status  # pings do not count towards the endpoint's health
    await _update_health(session, outbox, settings, subscription_id, result)
    return status


async def _update_health(
    session: AsyncSession,
    outbox: Outbox,
    settings: Settings,
    subscription_id: uuid.UUID,
    result: AttemptResult,
) -> None:
    s = subscriptions
    if result.ok:
        await session.execute(
            sa.update(s)
            .where(s.c.id == subscription_id, s.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return
    if result.status_code == 410:
        await disable_subscription(
            session,
            outbox,
            subscription_id,
            "endpoint_gone",
            "the endpoint answered 410 Gone",
            None,
            410,
        )
        return
    failing_since = (
        await session.execute(
            sa.update(s)
            .where(s.c.id == subscription_id)
            .values(failing_since=sa.func.coalesce(s.c.failing_since, result.attempted_at))
            .returning(s.c.failing_since)
        )
    ).scalar()
    if failing_since is None:
        return
    if (result.attempted_at - failing_since).total_seconds() >= settings.webhook_disable_after_s:
        await disable_subscription(
            session,
            outbox,
            subscription_id,
            "failing",
            f"every delivery failed since {failing_since.isoformat()}; last: {result.error}",
            failing_since,
            result.status_code,
        )


class DeliveryWorker:
    """Claims due deliveries, sends them concurrently, records the outcomes."""

    def __init__(self, app: FastAPI, sender: Sender) -> None:
        self.app = app
        self.settings: Settings = app.state.settings
        self.sender = sender
        self.sent_total = 0

    async def run_once(self) -> int:
        settings = self.settings
        async with self.app.state.sessions.begin() as session:
            claimed = (
                await session.execute(
                    CLAIM_SQL,
                    {"limit": settings.delivery_batch_size, "lease": settings.delivery_lease_s},
                )
            ).all()
        if not claimed:
            return 0
        limit = asyncio.Semaphore(settings.delivery_concurrency)

        async def attempt(row: Any) -> AttemptResult:
            async with limit:
                secrets = active_secrets(
                    row.secret, row.previous_secret, row.previous_secret_expires_at
                )
                return await self.sender.send(row.url, str(row.id), row.payload, secrets)

        results = await asyncio.gather(*(attempt(row) for row in claimed))
        async with self.app.state.sessions.begin() as session:
            for row, result in zip(claimed, results, strict=True):
                await record_attempt(
                    session,
                    self.app.state.outbox,
                    settings,
                    row.id,
                    row.subscription_id,
                    row.attempt_count + 1,
                    result,
                )
        self.sent_total += len(claimed)
        return len(claimed)


async def prune_deliveries(app: FastAPI, session: AsyncSession) -> int:
    """Delete finished deliveries (and their attempts) older than the retention period."""
    settings: Settings = app.state.settings
    d = deliveries
    old = (
        sa.select(d.c.id)
        .where(
            d.c.status != "pending",
            d.c.created_at
            < sa.func.now() - sa.func.make_interval(0, 0, 0, settings.delivery_retention_days),
        )
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(sa.delete(d).where(d.c.id.in_(old)).returning(d.c.id))
    return len(result.all())


async def delivery_worker(app: FastAPI) -> None:
    """Background task: deliver until cancelled."""
    settings: Settings = app.state.settings
    sender = Sender(settings)
    app.state.sender = sender
    worker = DeliveryWorker(app, sender)
    app.state.delivery_worker = worker
    try:
        while True:
            handled = 0
            try:
                handled = await worker.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("delivery batch failed; retrying")
            scheduler.passes(app)["webhook-deliveries"] += 1
            if handled < settings.delivery_batch_size:
                await asyncio.sleep(settings.delivery_poll_interval_s)
    finally:
        await sender.aclose()
