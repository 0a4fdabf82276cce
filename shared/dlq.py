"""Replay parked events: `python -m shared.dlq replay SERVICE GROUP [--dry-run]`.

Reads `kehu.dlq.<GROUP>` from where the last replay stopped, forgets each event's dead-lettered
inbox entry in SERVICE's database (so the consumer applies it again instead of skipping it as a
duplicate) and republishes the original record to its original topic. Run it once the cause of
the failure is fixed; an event that fails again is parked again.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from shared.consumer import dlq_topic
from shared.db import create_engine
from shared.kafka import new_producer, stop_consumer
from shared.settings import ServiceSettings

ERROR_HEADERS = {
    "kehu_error",
    "kehu_original_topic",
    "kehu_original_partition",
    "kehu_original_offset",
}


def _header(headers: Any, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def replay(
    settings: ServiceSettings,
    inbox: sa.Table,
    group: str,
    dry_run: bool = False,
    idle_ms: int = 2000,
) -> int:
    """Republish every parked record not replayed before; returns how many."""
    consumer = AIOKafkaConsumer(
        dlq_topic(group),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{group}.dlq-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    producer = new_producer(settings)
    engine = create_engine(settings)
    replayed = 0
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=idle_ms, max_records=500)
            records = [r for batch in batches.values() for r in batch]
            if not records:
                return replayed
            for record in records:
                topic = _header(record.headers, "kehu_original_topic")
                event_id = _header(record.headers, "ce_id")
                if topic is None:
                    continue
                print(
                    f"{'would replay' if dry_run else 'replaying'} {event_id} to {topic}: "
                    f"{_header(record.headers, 'kehu_error')}"
                )
                if dry_run:
                    continue
                if event_id is not None:
                    async with engine.begin() as conn:
                        await conn.execute(
                            sa.delete(inbox).where(
                                inbox.c.consumer == group,
                                inbox.c.event_id == event_id,
                                inbox.c.status == "dead_lettered",
                            )
                        )
                headers = [(k, v) for k, v in record.headers or () if k not in ERROR_HEADERS]
                await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)
                replayed += 1
            if not dry_run:
                await consumer.commit()
    finally:
        await stop_consumer(consumer)
        await producer.stop()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.dlq")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("replay", help="republish parked events of a consumer group")
    cmd.add_argument("service")
    cmd.add_argument("group")
    cmd.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    settings = importlib.import_module(f"services.{args.service}.config").Settings()
    inbox = importlib.import_module(f"services.{args.service}.models").inbox
    count = asyncio.run(replay(settings, inbox, args.group, args.dry_run))
    print(f"{'found' if args.dry_run else 'replayed'} {count} parked event(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
