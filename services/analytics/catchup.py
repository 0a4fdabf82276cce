"""Catch-up from the source services' event feeds: the repair path beside Kafka.

Kafka is the fast path, but a broker can lose records a consumer never read: a memory-only
broker restarted, retention that expired during a long outage, a topic deleted and created
again. The events themselves are never lost: each source service keeps them in its outbox and
serves them, in a gap-free order, at `GET /events`.

So every `catchup_every_s` one analytics replica (a transaction-level advisory lock decides
which) reads each source feed from the position it reached last time, up to the events older
than `catchup_grace_s` (Kafka normally delivers well within that), and applies the ones the
consumer has not: the inbox decides, in the same transaction as the effect, so an event is
counted once whether Kafka, the catch-up or both bring it. In steady state it applies nothing;
`kehu_feed_catchup_events_total{outcome="applied"}` counts the events only the catch-up
delivered, which is worth an alert: the broker lost something.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import models as m
from services.analytics.config import Settings
from services.analytics.errors import RebuildFailed
from services.analytics.projection import EVENT_TYPES, handle_batch
from services.analytics.rebuild import feed_urls, positions, read_feed, save_position
from shared.auth import issue_token
from shared.consumer import claim as inbox_claim
from shared.events.envelope import CloudEvent

logger = logging.getLogger("kehu.analytics.catchup")
LOCK = 0x6B656875_63617463  # "kehucatc": one catch-up at a time across replicas
CATCHUP_EVENTS = Counter(
    "kehu_feed_catchup_events_total",
    "Events read back from a source feed, by whether Kafka had already delivered them",
    ["source", "outcome"],
)


@dataclass
class CatchUpResult:
    """Per source: events checked, and events applied because Kafka had not delivered them."""

    checked: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # feeds that could not be read
    skipped: bool = False  # another replica holds the catch-up


async def claim(session: AsyncSession, consumer: str, events: list[CloudEvent]) -> list[CloudEvent]:
    """The events the consumer has not applied, now recorded in its inbox (the consumer's own
    claim, in the caller's transaction: exactly one side applies an event)."""
    relevant = [e for e in events if e.type in EVENT_TYPES]
    claimed = await inbox_claim(session, m.inbox, consumer, relevant)
    return [e for e in relevant if e.id in claimed]


async def catch_up(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clients: Mapping[str, httpx.AsyncClient],
    *,
    now: datetime | None = None,
) -> CatchUpResult:
    """Read each feed forward from its saved position; apply what the inbox has not seen.

    One transaction per feed page, so a long catch-up commits as it goes and a failure loses
    nothing but the page at hand.
    """
    token = issue_token(settings, "admin", subject="analytics-catchup")
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settings.catchup_grace_s)
    result = CatchUpResult()
    for name, client in clients.items():
        try:
            if not await _catch_up_feed(sessions, settings, name, client, token, cutoff, result):
                result.skipped = True
                return result
        except RebuildFailed as exc:  # one unreachable feed must not hold back the others
            result.errors[name] = str(exc)
            logger.warning("catch-up: %s", exc)
        if result.applied.get(name):
            logger.warning(
                "catch-up applied %d event(s) from the %s feed that Kafka had not delivered",
                result.applied[name],
                name,
            )
    return result


async def _catch_up_feed(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    name: str,
    client: httpx.AsyncClient,
    token: str,
    cutoff: datetime,
    result: CatchUpResult,
) -> bool:
    """Catch up one feed; False when another replica holds the catch-up."""
    result.checked[name] = result.applied[name] = 0
    async with sessions.begin() as session:
        if not await _locked(session):
            return False
        after = (await positions(session)).get(name, 0)
    async for page in read_feed(client, name, token, settings.rebuild_page_size, after):
        ripe = []
        for event in page:
            if event.time > cutoff:
                break
            ripe.append(event)
        if not ripe:
            break
        async with sessions.begin() as session:
            if not await _locked(session):
                return False
            new = await claim(session, settings.consumer_group, ripe)
            if new:
                await handle_batch(session, new, settings, incremental=True)
            await save_position(session, name, int(ripe[-1].sequence or after))
        result.checked[name] += len(ripe)
        result.applied[name] += len(new)
        CATCHUP_EVENTS.labels(name, "already_applied").inc(len(ripe) - len(new))
        CATCHUP_EVENTS.labels(name, "applied").inc(len(new))
        if len(ripe) < len(page):
            break
    return True


async def _locked(session: AsyncSession) -> bool:
    return bool(await session.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(LOCK))))


def feed_clients(settings: Settings) -> dict[str, httpx.AsyncClient]:
    urls = feed_urls(settings)
    return {
        name: httpx.AsyncClient(base_url=urls[name], timeout=30)
        for name in settings.catchup_sources
    }
