"""Print the events on Kafka topics as structured CloudEvents, one JSON line each.

    python -m shared.events tail kehu.customers [--type TYPE ...] [--from-beginning]

For developers and subscribers: it reads every partition by assignment, with no consumer
group and no offset commits, so it disturbs no one and needs nothing the embedded broker lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events.envelope import CloudEvent, MalformedEvent, from_kafka
from shared.settings import ServiceSettings

METADATA_TIMEOUT_S = 15.0


class TopicNotFound(LookupError):
    """The broker does not know the topic (yet)."""


def default_bootstrap() -> str:
    """`KAFKA_BOOTSTRAP_SERVERS`, else the broker of `make dev`."""
    default = ServiceSettings.model_fields["kafka_bootstrap_servers"].default
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or str(default)


def wanted(event_type: str, patterns: Sequence[str]) -> bool:
    """No patterns: every type. Otherwise exact types or wildcards such as `kehu.complaint.*`."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def as_line(event: CloudEvent) -> str:
    return json.dumps(event.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + METADATA_TIMEOUT_S
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() >= deadline:
            raise TopicNotFound(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


async def tail(
    bootstrap: str,
    topics: Sequence[str],
    *,
    types: Sequence[str] = (),
    from_beginning: bool = False,
    max_events: int | None = None,
    idle_timeout: float | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Print matching events until `max_events`, `idle_timeout` seconds without a record, or
    cancellation; the number printed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kehu-events-tail",
        group_id=None,  # no group: nothing joined, nothing committed
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    try:
        assigned = [tp for topic in topics for tp in await _partitions(consumer, topic)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        # Resolve the positions now, so "from the end" means from this moment.
        for tp in assigned:
            await consumer.position(tp)
        where = "the beginning" if from_beginning else "the end"
        print(
            f"tailing {', '.join(topics)} ({len(assigned)} partitions) from {where} on {bootstrap}",
            file=err,
            flush=True,
        )
        printed = 0
        last_record = time.monotonic()
        while max_events is None or printed < max_events:
            batch = await consumer.getmany(timeout_ms=250)
            if not batch:
                if idle_timeout is not None and time.monotonic() - last_record >= idle_timeout:
                    break
                continue
            last_record = time.monotonic()
            records = sorted(
                (r for part in batch.values() for r in part), key=lambda r: r.timestamp
            )
            for record in records:
                try:
                    event = from_kafka(record.value, record.headers)
                except MalformedEvent as exc:
                    print(
                        f"skipped {record.topic}[{record.partition}]@{record.offset}: {exc}",
                        file=err,
                        flush=True,
                    )
                    continue
                if not wanted(event.type, types):
                    continue
                print(as_line(event), file=out, flush=True)
                printed += 1
                if max_events is not None and printed >= max_events:
                    break
        return printed
    finally:
        await consumer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.events",
        description="Event tooling for developers and subscribers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser(
        "tail",
        help="print a topic's events as CloudEvents, one JSON line each",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("topics", nargs="+", metavar="topic", help="e.g. kehu.customers")
    cmd.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TYPE",
        help="only this event type (repeatable; wildcards such as 'kehu.complaint.*')",
    )
    cmd.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest retained record (default: only new records)",
    )
    cmd.add_argument("--max", type=int, metavar="N", help="stop after printing N events")
    cmd.add_argument(
        "--idle-timeout", type=float, metavar="S", help="stop after S seconds without a record"
    )
    cmd.add_argument(
        "--bootstrap-servers",
        default=default_bootstrap(),
        help="default: $KAFKA_BOOTSTRAP_SERVERS, else the `make dev` broker (%(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(
            tail(
                args.bootstrap_servers,
                args.topics,
                types=args.types,
                from_beginning=args.from_beginning,
                max_events=args.max,
                idle_timeout=args.idle_timeout,
            )
        )
    except TopicNotFound as exc:
        print(f"no topic {exc} on {args.bootstrap_servers}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # Ctrl-C: the consumer was stopped on the way out
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: point stdout at devnull so the interpreter's
        # final flush does not fail on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
