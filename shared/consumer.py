"""Consumer runner: batched, effectively-once, with bounded retries and a dead-letter topic.

For each batch fetched from Kafka, one database transaction records every new event id in the
inbox and applies its effect; offsets are committed only after that transaction commits. A
redelivered event finds its id in the inbox and is skipped. A handler that keeps failing is
retried `consumer_max_retries` times (each in its own savepoint), then the record is parked on
`kehu.dlq.<group>` with the error, marked dead-lettered in the inbox, and the batch goes on.
Infrastructure failures (database or broker) abort the batch, which is read again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import metrics
from shared.events.envelope import CloudEvent, MalformedEvent, from_kafka
from shared.kafka import ensure_topics, new_consumer, new_producer, stop_consumer
from shared.settings import ServiceSettings

logger = logging.getLogger("kehu.consumer")
T = TypeVar("T")
current_event_id: ContextVar[str | None] = ContextVar("current_event_id", default=None)

EventHandler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
# Batch mode: one call per fetched batch with the events not seen before (after the inbox),
# so a projection can apply a whole batch with set-based statements.
BatchHandler = Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]
# Pure work on a fetched batch's events (decoding, validation) done ahead, while the batch
# before it is in the database. It must not touch the database nor fail: an event it cannot
# prepare is left as it is, for the batch handler to fail on.
BatchPrepare = Callable[[list[CloudEvent]], None]
# Records unpacked and decoded per step of the read-ahead, between which the batch in the
# database resumes: 500 a step held each of its statements' results back up to ~10 ms (the
# analytics drain went from ~23k to ~27k events/s with 50; 25 cost more Python than it saved).
DECODE_STEP = 50


async def in_steps(items: Sequence[T], step: int = DECODE_STEP) -> AsyncIterator[Sequence[T]]:
    """`items` in slices of `step`, giving the event loop a turn between two slices: a batch
    handler's Python over hundreds of events would otherwise hold every request of its
    process back for tens of milliseconds at a time."""
    for start in range(0, len(items), step):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + step]


def dlq_topic(group_id: str) -> str:
    return f"kehu.dlq.{group_id}"


# Deadlocks, serialization failures and cancelled statements say nothing about the event:
# the batch is rolled back and read again instead of parking the event.
TRANSIENT_SQLSTATES = {"40001", "40P01", "57014", "55P03"}


def _is_infrastructure_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
            if getattr(candidate, "sqlstate", None) in TRANSIENT_SQLSTATES:
                return True
    return False


async def claim(
    session: AsyncSession, inbox: sa.Table, consumer: str, events: Sequence[CloudEvent]
) -> set[str]:
    """Record the events in `consumer`'s inbox; the ids that were not there yet.

    In the caller's transaction, with the effect: an event is applied by whoever claims it.
    A concurrent claim of the same id waits for the other transaction and then finds the row,
    so Kafka redeliveries, feed catch-ups and rebuilds never apply an event twice.
    """
    if not events:
        return set()
    # Two JSON arrays expanded side by side: one cached statement whatever the batch size (a
    # multi-row VALUES is compiled anew for every batch size, which cost more than the
    # insert), and one text parameter each (asyncpg encodes an array parameter's elements
    # one by one in Python).
    statement = sa.text(
        f"INSERT INTO {inbox.name} (consumer, event_id, type) "
        "SELECT :consumer, u.event_id, u.type "
        "FROM ROWS FROM (json_array_elements_text(CAST(:ids AS json)), "
        "json_array_elements_text(CAST(:types AS json))) AS u(event_id, type) "
        f"ON CONFLICT DO NOTHING RETURNING {inbox.name}.event_id"
    )
    params = {
        "consumer": consumer,
        "ids": orjson.dumps([e.id for e in events]).decode(),
        "types": orjson.dumps([e.type for e in events]).decode(),
    }
    return set((await session.execute(statement, params)).scalars())


class ConsumerRunner:
    def __init__(
        self,
        settings: ServiceSettings,
        engine: AsyncEngine,
        inbox: sa.Table,
        group_id: str,
        topics: Iterable[str],
        handlers: dict[str, EventHandler],
        *,
        batch_handler: BatchHandler | None = None,
        batch_types: Collection[str] | None = None,
        raw_data: bool = False,
        prepare: BatchPrepare | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.inbox = inbox
        self.group_id = group_id
        self.topics = sorted(set(topics))
        self.handlers = handlers
        # Per-event handlers run through the batch path too, so every consumer gets one inbox
        # insert and one savepoint per batch, falling back to one event at a time only to
        # isolate a poison event.
        self.batch_handler: BatchHandler = batch_handler or self._dispatch
        self.batch_types = (
            frozenset(batch_types)
            if batch_types is not None
            else (None if batch_handler is not None else frozenset(handlers))
        )
        # A batch handler that validates every event's data against its contract anyway gets
        # it undecoded (`CloudEvent.raw_data`): one decode and validation per event, not two.
        self.raw_data = raw_data
        self.prepare = prepare
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.lag = 0
        self.last_progress = time.time()
        self.last_error: str | None = None
        self.processed_total = 0
        self.dead_lettered_total = 0
        # Per partition, the offset after the last batch applied since the clients opened (the
        # consumer's position runs one batch ahead of it while the next batch is read ahead).
        self._applied: dict[TopicPartition, int] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_clients()

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        """Ready unless behind and without progress for `consumer_stall_after_s`."""
        idle_for = time.time() - self.last_progress
        stalled = self.consumer is None or (
            self.lag > 0 and idle_for > self.settings.consumer_stall_after_s
        )
        return not stalled, {
            "group": self.group_id,
            "connected": self.consumer is not None,
            "lag": self.lag,
            "seconds_since_progress": round(idle_for, 1),
            "last_error": self.last_error,
        }

    async def _open_clients(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            await ensure_topics(self.settings, [*self.topics, dlq_topic(self.group_id)])
            producer = new_producer(self.settings)
            consumer = new_consumer(self.settings, self.group_id, self.topics)
            try:
                await producer.start()
                await consumer.start()
            except BaseException:
                await consumer.stop()
                await producer.stop()
                raise
            self.producer, self.consumer = producer, consumer
            self.last_progress = time.time()
        return self.consumer

    async def _close_clients(self) -> None:
        consumer, producer = self.consumer, self.producer
        self.consumer = self.producer = None
        self._applied.clear()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop_consumer(consumer), 10)
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)

    async def _run(self) -> None:
        backoff = 0.2
        # The next batch, read and decoded while the current one is in the database: on two
        # cores Python and PostgreSQL then work side by side instead of taking turns. Nothing
        # of it counts until its own turn; a failure drops it with the clients.
        ahead: asyncio.Task[_Batch] | None = None
        try:
            while True:
                try:
                    consumer = await self._open_clients()
                    batch = await (ahead or self._read(consumer))
                    ahead = None
                    if batch.records:
                        ahead = asyncio.create_task(self._read(consumer))
                        await self._apply(batch)
                        await consumer.commit(batch.offsets)
                        self._applied.update(batch.offsets)
                    await self._update_lag(consumer)
                    self.last_progress = time.time()
                    self.last_error = None
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await _cancel(ahead)
                    ahead = None
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "consumer %s: %s; retrying in %.1fs",
                        self.group_id,
                        self.last_error,
                        backoff,
                    )
                    # Re-read from the last committed offsets: nothing of the failed batch
                    # counted.
                    await self._close_clients()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await _cancel(ahead)

    async def _read(self, consumer: AIOKafkaConsumer) -> _Batch:
        """Fetch a batch and decode it, a step at a time.

        Read ahead, this runs beside the batch before it, which waits on the database: each
        step is short (unpacking and decoding `DECODE_STEP` records, well under a millisecond
        of Python) so that batch's statements resume as soon as their results arrive, instead of
        after the whole batch was unpacked and decoded. The batch is what the consumer holds
        once the first records arrive and what follows within `consumer_linger_ms`, up to
        `consumer_batch_size`."""
        limit = self.settings.consumer_batch_size
        records: list[ConsumerRecord[Any, Any]] = []
        offsets: dict[TopicPartition, int] = {}
        decoded: list[tuple[ConsumerRecord[Any, Any], CloudEvent | MalformedEvent]] = []
        fetched = await consumer.getmany(timeout_ms=1000, max_records=min(DECODE_STEP, limit))
        linger_until = time.monotonic() + self.settings.consumer_linger_ms / 1000
        while fetched:
            step: list[ConsumerRecord[Any, Any]] = []
            for tp, part in fetched.items():
                if part:
                    step.extend(part)
                    offsets[tp] = part[-1].offset + 1
            records.extend(step)
            pairs = [(r, self._decode(r)) for r in step]
            if self.prepare is not None:
                try:
                    self.prepare([e for _, e in pairs if isinstance(e, CloudEvent)])
                except Exception:  # only a lost head start: the handler does the work
                    logger.exception("consumer %s: preparing a batch failed", self.group_id)
            decoded.extend(pairs)
            if len(records) >= limit:
                break
            await asyncio.sleep(0)
            # What the consumer holds (fetched in the background), and what arrives until the
            # linger ends; past it, nothing is waited for.
            wait_ms = max(0, round((linger_until - time.monotonic()) * 1000))
            fetched = await consumer.getmany(
                timeout_ms=wait_ms, max_records=min(DECODE_STEP, limit - len(records))
            )
        return _Batch(records, offsets, decoded)

    def _decode(self, record: ConsumerRecord[Any, Any]) -> CloudEvent | MalformedEvent:
        try:
            return from_kafka(record.value, record.headers, decode_data=not self.raw_data)
        except MalformedEvent as exc:
            return exc

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                applied = self._applied.get(tp)
                if applied is None:
                    applied = await consumer.position(tp)
                lag += max(0, highwater - applied)
        self.lag = lag
        metrics.CONSUMER_LAG.labels(self.group_id).set(lag)
        metrics.CONSUMER_LAST_PROGRESS.labels(self.group_id).set(time.time())

    # -- one batch ---------------------------------------------------------------------------

    async def process(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        """Apply a batch in one transaction: inbox ids and effects commit together."""
        await self._apply(_Batch(records, {}, [(r, self._decode(r)) for r in records]))

    async def _apply(self, batch: _Batch) -> None:
        async with self.sessions() as session, session.begin():
            await self._process_batch(session, batch.decoded, self.batch_handler)

    async def _dispatch(self, session: AsyncSession, events: list[CloudEvent]) -> None:
        for event in events:
            token = current_event_id.set(event.id)
            try:
                await self.handlers[event.type](session, event)
            finally:
                current_event_id.reset(token)

    async def _process_batch(
        self,
        session: AsyncSession,
        decoded: list[tuple[ConsumerRecord[Any, Any], CloudEvent | MalformedEvent]],
        batch_handler: BatchHandler,
    ) -> None:
        """Batch mode: one inbox insert for the batch, then one handler call for the new events.

        If the batch handler keeps failing, each event is retried alone (in its own savepoint)
        so only the poison events are dead-lettered and the rest of the batch still applies.
        """
        fresh_by_id: dict[str, tuple[ConsumerRecord[Any, Any], CloudEvent]] = {}
        seen = 0
        for record, event in decoded:
            if isinstance(event, MalformedEvent):
                await self._dead_letter(record, event)
                continue
            if self.batch_types is not None and event.type not in self.batch_types:
                continue
            seen += 1
            fresh_by_id.setdefault(event.id, (record, event))
        if not fresh_by_id:
            return
        inserted = await claim(
            session, self.inbox, self.group_id, [e for _, e in fresh_by_id.values()]
        )
        fresh = [(r, e) for r, e in fresh_by_id.values() if e.id in inserted]
        if seen > len(fresh):
            metrics.CONSUMER_PROCESSED.labels(self.group_id, "duplicate").inc(seen - len(fresh))
        if not fresh:
            return
        if await self._attempt(session, batch_handler, [e for _, e in fresh]) is None:
            self.processed_total += len(fresh)
            metrics.CONSUMER_PROCESSED.labels(self.group_id, "processed").inc(len(fresh))
            return
        for record, event in fresh:  # isolate the poison events
            token = current_event_id.set(event.id)
            try:
                error = await self._attempt(session, batch_handler, [event])
            finally:
                current_event_id.reset(token)
            if error is None:
                self.processed_total += 1
                metrics.CONSUMER_PROCESSED.labels(self.group_id, "processed").inc()
                continue
            await self._dead_letter(record, error)
            await session.execute(
                sa.update(self.inbox)
                .where(self.inbox.c.consumer == self.group_id, self.inbox.c.event_id == event.id)
                .values(status="dead_lettered", error=f"{type(error).__name__}: {error}")
            )

    async def _attempt(
        self, session: AsyncSession, batch_handler: BatchHandler, events: list[CloudEvent]
    ) -> Exception | None:
        """Run the batch handler with bounded retries, each in a savepoint; the last error."""
        error: Exception | None = None
        for attempt in range(self.settings.consumer_max_retries):
            try:
                async with session.begin_nested():
                    await batch_handler(session, events)
                return None
            except Exception as exc:
                if _is_infrastructure_error(exc):
                    raise
                error = exc
                logger.warning(
                    "batch handler failed on %d event(s) (attempt %d): %s",
                    len(events),
                    attempt + 1,
                    exc,
                )
                await asyncio.sleep(0.05 * 2**attempt)
        return error

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], error: Exception) -> None:
        assert self.producer is not None
        headers = [
            *(record.headers or ()),
            ("kehu_error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("kehu_original_topic", record.topic.encode()),
            ("kehu_original_partition", str(record.partition).encode()),
            ("kehu_original_offset", str(record.offset).encode()),
        ]
        await self.producer.send_and_wait(
            dlq_topic(self.group_id), value=record.value, key=record.key, headers=headers
        )
        self.dead_lettered_total += 1
        metrics.CONSUMER_PROCESSED.labels(self.group_id, "dead_lettered").inc()
        logger.error(
            "parked %s[%d]@%d on %s: %s",
            record.topic,
            record.partition,
            record.offset,
            dlq_topic(self.group_id),
            error,
        )


class _Batch(NamedTuple):
    records: list[ConsumerRecord[Any, Any]]
    offsets: dict[TopicPartition, int]  # to commit once applied
    decoded: list[tuple[ConsumerRecord[Any, Any], CloudEvent | MalformedEvent]]


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


__all__ = [
    "BatchHandler",
    "BatchPrepare",
    "ConsumerRunner",
    "EventHandler",
    "TopicPartition",
    "dlq_topic",
]
