"""Transactional outbox: emit inside the caller's transaction; a relay publishes to Kafka.

The relay works in two short steps, each serialised across replicas by a PostgreSQL advisory
lock (so one customer's events keep their order however many replicas run):

1. *sequence*: committed rows without a feed position get the next positions, in insertion
   order. The position is the event-log cursor served by `GET /events`; it is assigned after
   commit, so a reader never skips a row that committed late.
2. *publish*: positioned, unpublished rows are claimed with `FOR UPDATE SKIP LOCKED` in
   position order, sent as one batch, and marked published only once the broker acked them.

The relay sleeps until a commit *in its own process* that wrote outbox rows wakes it (the session
that emitted calls the relay's `wake` after its commit: no NOTIFY round trip or commit-time
lock per request), and polls every `outbox_poll_interval_s` for rows other replicas or processes
committed (their own relays normally take those first). With the broker down, step 1 keeps the
feed current and step 2 retries with backoff; nothing is lost. Rows are kept as the service's
event log for `outbox_retention_days`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from shared import metrics
from shared.db import rows_json
from shared.events.envelope import CloudEvent, binary_record
from shared.events.registry import EventContract
from shared.kafka import ensure_topics, missing_topics, new_producer
from shared.settings import ServiceSettings

logger = logging.getLogger("kehu.outbox")
NOTIFY_CHANNEL = "kehu_outbox"
# Any constant works; it only has to be the same for every replica of one service database.
RELAY_LOCK_KEY = 0x6B656875


class TopicsMissing(RuntimeError):
    pass


# The feed-position indexes hold positioned rows only: an insert writes no entry into them
# (the relay's sequencing does, once). Every reader of positions can use them: `position > x`
# and `max(position)` imply `position IS NOT NULL`.
POSITIONED = sa.text("position IS NOT NULL")


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        # Made here, never taken from outside: not indexed (`migration_ops.drop_event_id_unique`).
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("partition_key", sa.Text),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("position", sa.BigInteger),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("ix_outbox_unsequenced", "id", postgresql_where=sa.text("position IS NULL")),
        sa.Index(
            "ix_outbox_unpublished",
            "position",
            postgresql_where=sa.text("position IS NOT NULL AND published_at IS NULL"),
        ),
        # Positioned rows only (see POSITIONED): a row is inserted without one.
        sa.Index("uq_outbox_position", "position", unique=True, postgresql_where=POSITIONED),
        sa.Index("ix_outbox_type_position", "type", "position", postgresql_where=POSITIONED),
    )


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    """Processed event ids per consumer group, written in the same transaction as the effect."""
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="processed"),
        sa.Column("error", sa.Text),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


# Run by each service's first migration: woke the relay once per inserting statement before the
# relay was woken in-process; services drop it in a later migration (`drop_notify_trigger`).
NOTIFY_TRIGGER_SQL = [
    f"""
    CREATE OR REPLACE FUNCTION kehu_outbox_notify() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION kehu_outbox_notify()
    """,
]
DROP_TRIGGER_SQL = [
    "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
    "DROP FUNCTION IF EXISTS kehu_outbox_notify()",
]


def build_event(contract: EventContract, source: str, **attributes: Any) -> CloudEvent:
    key = contract.partition_key()
    return CloudEvent(
        source=source,
        type=contract.event_type(),
        subject=key,
        partitionkey=key,
        data=contract.model_dump(mode="json"),
        **attributes,
    )


WAKE_KEY = "kehu_outbox_wake"
# The relay of each outbox table in this process (set by the service app): every `Outbox` on
# that table, the app's or a consumer module's own, wakes it after a commit that wrote events.
_RELAY_WAKERS: dict[sa.Table, Any] = {}


def wake_relay_on_commit(table: sa.Table, wake: Any) -> None:
    """`wake` is called after each commit that wrote rows of `table` (None: nothing to wake,
    the relay that publishes them polls)."""
    if wake is None:
        _RELAY_WAKERS.pop(table, None)
    else:
        _RELAY_WAKERS[table] = wake


@sa.event.listens_for(Session, "after_commit")
def _wake_relay_after_commit(session: Session) -> None:
    """A committed transaction that wrote outbox rows wakes its process's relay."""
    wake = session.info.pop(WAKE_KEY, None)
    if wake is not None:
        wake()


@sa.event.listens_for(Session, "after_rollback")
def _forget_rolled_back_rows(session: Session) -> None:
    session.info.pop(WAKE_KEY, None)


# The columns an emitted row sets (`Outbox._row`), in the order its statements name them.
ROW_COLUMNS = ("event_id", "type", "source", "subject", "partition_key", "topic", "time", "data")
# Outbox rows read from a JSON array of `Outbox.row`s (`{param}`: the array's parameter), for
# `Outbox.emit` and the hand-written statements that insert their events themselves.
OUTBOX_ROWS = (
    "FROM jsonb_to_recordset({param}::jsonb) AS x(event_id uuid, type text, source text, "
    "subject text, partition_key text, topic text, time timestamptz, data jsonb)"
)


class Outbox:
    """Emits events into one service's outbox table, inside the caller's transaction."""

    def __init__(self, table: sa.Table, source: str) -> None:
        self.table = table
        self.source = source
        # Several rows as one JSON document: one cached statement whatever their number (a
        # multi-row VALUES is compiled anew for every call, ~8 ms for 50 rows).
        self._from_json = sa.text(
            f"INSERT INTO {table.name} ({', '.join(ROW_COLUMNS)}) "
            f"SELECT {', '.join(f'x.{name}' for name in ROW_COLUMNS)} "
            + OUTBOX_ROWS.format(param="CAST(:rows AS jsonb)")
        )

    def written(self, session: AsyncSession | AsyncConnection | Session) -> None:
        """Note that `session`'s transaction wrote outbox rows: its commit wakes the relay.

        `emit` calls it; so does a statement that inserts outbox rows itself (a CTE)."""
        wake = _RELAY_WAKERS.get(self.table)
        if wake is None:
            return
        if isinstance(session, AsyncSession):
            session.sync_session.info[WAKE_KEY] = wake
        elif isinstance(session, Session):
            session.info[WAKE_KEY] = wake
        # A bare connection has no after-commit hook: the relay's polling picks its rows up.

    def wake(self) -> None:
        """Wake the relay at once, for rows already committed."""
        wake = _RELAY_WAKERS.get(self.table)
        if wake is not None:
            wake()

    def row(self, contract: EventContract) -> dict[str, Any]:
        """The outbox row of one event (for statements that insert it themselves)."""
        return self._row(contract)

    def _row(self, contract: EventContract) -> dict[str, Any]:
        event = build_event(contract, self.source)
        return {
            "event_id": uuid.UUID(event.id),
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "partition_key": event.partitionkey,
            "topic": contract.topic,
            "time": event.time,
            "data": event.data,
        }

    async def emit(self, session: AsyncSession | AsyncConnection, *events: EventContract) -> None:
        """Record events; they are published only if the caller's transaction commits."""
        if not events:
            return
        rows = [self._row(e) for e in events]
        if len(rows) == 1:  # a request's event: the cached single-row insert
            await session.execute(sa.insert(self.table).values(rows))
        elif len(rows) <= 50:  # a consumer batch's: one document, one statement
            await session.execute(self._from_json, {"rows": rows_json(rows)})
        else:  # imports and re-ranks: executemany keeps each statement's parameters bounded
            await session.execute(sa.insert(self.table), rows)
        self.written(session)


def attributes_of(row: Any) -> dict[str, Any]:
    """An outbox row's CloudEvents attributes, all but its data."""
    return {
        "id": str(row.event_id),
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "partitionkey": row.partition_key,
        "time": row.time,
        "sequence": str(row.position) if row.position is not None else None,
    }


def row_to_event(row: Any) -> CloudEvent:
    return CloudEvent(**attributes_of(row), data=row.data)


# Rows sent between two yields to the event loop (about a millisecond of Python).
SEND_STEP = 16


class _RelayStatements:
    """The relay's statements, built once: building them anew on every pass, several times a
    second in every process, cost more Python than running them."""

    def __init__(self, t: sa.Table, batch_size: int) -> None:
        self.lock = sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))
        pending = (
            sa.select(t.c.id)
            .where(t.c.position.is_(None))
            .order_by(t.c.id)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
            .subquery()
        )
        numbered = sa.select(
            pending.c.id, sa.func.row_number().over(order_by=pending.c.id).label("rn")
        ).cte("numbered")
        base = sa.select(sa.func.coalesce(sa.func.max(t.c.position), 0)).scalar_subquery()
        self.sequence = (
            sa.update(t)
            .where(t.c.id == numbered.c.id)
            .values(position=base + numbered.c.rn)
            .returning(t.c.id)
        )
        self.claim = (
            sa.select(
                *(t.c[n] for n in ("id", "event_id", "type", "source", "subject")),
                *(t.c[n] for n in ("partition_key", "topic", "time", "position")),
                sa.cast(t.c.data, sa.Text).label("data"),
            )
            .where(t.c.position.is_not(None), t.c.published_at.is_(None))
            .order_by(t.c.position)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        # One array parameter, not one per row: the statement compiles once, whatever the
        # batch's size.
        self.mark = (
            sa.update(t)
            .where(t.c.id == sa.func.any(sa.bindparam("ids", type_=ARRAY(sa.BigInteger))))
            .values(published_at=sa.func.now())
        )


class OutboxRelay:
    """Publishes one service's outbox to Kafka; safe to run in every replica."""

    def __init__(
        self, settings: ServiceSettings, engine: AsyncEngine, table: sa.Table, topics: set[str]
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.table = table
        self.topics = topics
        self.producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._statements = _RelayStatements(table, settings.outbox_batch_size)
        self.last_error: str | None = None
        self.published_total = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_producer()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                sequenced = await self.sequence_once()
                await self._ensure_producer()  # eagerly, so readiness reflects the broker
                published = await self.publish_once()
                self.last_error = None
                backoff = 0.2
                if sequenced < self.settings.outbox_batch_size and (
                    published < self.settings.outbox_batch_size
                ):
                    await self._sleep(self.settings.outbox_poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying whatever fails; the rows stay in the outbox
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("outbox relay: %s; retrying in %.1fs", self.last_error, backoff)
                await self._close_producer()
                await asyncio.sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
            # Under write load every commit wakes the relay; a short pause lets one relay pass
            # take many commits' events instead of running two transactions per request.
            await asyncio.sleep(self.settings.outbox_debounce_s)
        self._wake.clear()

    async def broker_reachable(self, timeout: float = 3.0) -> bool:
        if self.producer is None:
            return False
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout)
        except Exception:
            return False
        return True

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            producer = new_producer(self.settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            await ensure_topics(self.settings, self.topics)
            self.producer = producer
        return self.producer

    async def _close_producer(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    # -- the two steps -----------------------------------------------------------------------

    async def sequence_once(self) -> int:
        """Give committed, unsequenced rows the next feed positions, in insertion order."""
        async with self.engine.begin() as conn:
            if not await conn.scalar(self._statements.lock):
                return 0
            return len((await conn.execute(self._statements.sequence)).all())

    async def publish_once(self) -> int:
        """Send the oldest unpublished batch; mark rows published only after the broker acks.

        The rows' data goes out as the JSON PostgreSQL stored (not decoded and encoded again),
        and the sends yield every `SEND_STEP` rows: the relay shares its event loop with the
        service's requests."""
        statements = self._statements
        async with self.engine.begin() as conn:
            if not await conn.scalar(statements.lock):
                return 0
            rows = (await conn.execute(statements.claim)).all()
            if not rows:
                return 0
            producer = await self._ensure_producer()
            futures = []
            for start in range(0, len(rows), SEND_STEP):
                if start:
                    await asyncio.sleep(0)
                for row in rows[start : start + SEND_STEP]:
                    key, value, headers = binary_record(
                        **attributes_of(row), value=row.data.encode()
                    )
                    futures.append(
                        await producer.send(row.topic, value=value, key=key, headers=headers)
                    )
            await asyncio.wait_for(asyncio.gather(*futures), 30)
            # A broker that lost a topic (Tansu's memory storage after a restart) still acks
            # produces to it; those records are gone. Resend the batch once the topic exists.
            missing = await missing_topics(producer, {row.topic for row in rows})
            if missing:
                await ensure_topics(self.settings, missing)
                raise TopicsMissing(f"broker lost topics {sorted(missing)}; resending")
            await conn.execute(statements.mark, {"ids": [r.id for r in rows]})
        self.published_total += len(rows)
        metrics.OUTBOX_PUBLISHED.labels(self.settings.service_name).inc(len(rows))
        return len(rows)

    async def prune(self) -> int:
        """Delete published events older than the retention window."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t).where(
                    t.c.published_at.is_not(None),
                    t.c.time
                    < sa.func.now()
                    - sa.text(f"interval '{int(self.settings.outbox_retention_days)} days'"),
                )
            )
            return int(result.rowcount or 0)

    async def backlog(self) -> tuple[int, float | None]:
        """(unpublished events, age in seconds of the oldest one)."""
        t = self.table
        async with self.engine.connect() as conn:
            count, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(t.c.time)).where(
                        t.c.published_at.is_(None)
                    )
                )
            ).one()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
        return int(count), age


async def read_feed(
    conn: AsyncSession | AsyncConnection,
    table: sa.Table,
    after: int,
    limit: int,
    types: list[str] | None = None,
) -> list[CloudEvent]:
    """Events with a feed position after `after`, oldest first."""
    query = sa.select(table).where(table.c.position > after).order_by(table.c.position).limit(limit)
    if types:
        query = query.where(table.c.type.in_(types))
    return [row_to_event(row) for row in (await conn.execute(query)).all()]
