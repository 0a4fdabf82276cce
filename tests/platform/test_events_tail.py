"""`python -m shared.events tail` against the real broker: the records of a topic come out as
structured CloudEvents, one JSON line each, filtered by type, from the start or from now."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

import pytest

from shared.devstack import ROOT
from shared.events.envelope import CloudEvent, to_kafka
from shared.events.tail import wanted
from shared.kafka import ensure_topics, new_producer
from shared.settings import ServiceSettings
from tests.helpers import unique_topic

CREATED = "kehu.tailtest.created.v1"
UPDATED = "kehu.tailtest.updated.v1"


def settings() -> ServiceSettings:
    return ServiceSettings(kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])


def event(event_type: str) -> CloudEvent:
    customer = str(uuid.uuid4())
    return CloudEvent(
        source="/kehu/tailtest",
        type=event_type,
        subject=customer,
        partitionkey=customer,
        data={"customer_id": customer, "note": "näin"},
    )


async def publish(topic: str, events: list[CloudEvent]) -> None:
    producer = new_producer(settings())
    await producer.start()
    try:
        for e in events:
            key, value, headers = to_kafka(e)
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def start_tail(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.events",
        "tail",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def lines_of(process: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    return [json.loads(line) for line in stdout.decode().splitlines()]


def assert_is(printed: dict[str, Any], sent: CloudEvent) -> None:
    assert printed["specversion"] == "1.0"
    assert printed["id"] == sent.id
    assert printed["source"] == sent.source
    assert printed["type"] == sent.type
    assert printed["subject"] == sent.subject
    assert CloudEvent.model_validate(printed).time == sent.time
    assert printed["datacontenttype"] == "application/json"
    assert printed["data"] == sent.data


async def test_tail_from_the_beginning_prints_only_the_chosen_type_as_cloudevents() -> None:
    topic = unique_topic()
    await ensure_topics(settings(), [topic])
    created = [event(CREATED) for _ in range(3)]
    updated = [event(UPDATED) for _ in range(2)]
    await publish(topic, [created[0], updated[0], created[1], updated[1], created[2]])

    tail = await start_tail(topic, "--from-beginning", "--type", CREATED, "--idle-timeout", "3")
    printed = await lines_of(tail)

    assert sorted(p["id"] for p in printed) == sorted(e.id for e in created)
    by_id = {e.id: e for e in created}
    for line in printed:
        assert_is(line, by_id[line["id"]])


async def test_tail_starts_at_the_end_by_default_and_stops_after_max() -> None:
    topic = unique_topic()
    await ensure_topics(settings(), [topic])
    old = event(CREATED)
    await publish(topic, [old])

    tail = await start_tail(topic, "--max", "1", "--idle-timeout", "30")
    assert tail.stderr is not None
    started = await asyncio.wait_for(tail.stderr.readline(), 30)
    assert b"from the end" in started, started
    new, later = event(UPDATED), event(CREATED)
    await publish(topic, [new, later])
    printed = await lines_of(tail)

    assert len(printed) == 1
    assert_is(printed[0], new)


@pytest.mark.parametrize(
    ("event_type", "patterns", "expected"),
    [
        ("kehu.complaint.resolved.v1", [], True),
        ("kehu.complaint.resolved.v1", ["kehu.complaint.resolved.v1"], True),
        ("kehu.complaint.resolved.v1", ["kehu.complaint.*"], True),
        ("kehu.customer.created.v1", ["kehu.complaint.*", "kehu.customer.updated.v1"], False),
    ],
)
def test_type_filter_takes_exact_types_and_wildcards(
    event_type: str, patterns: list[str], expected: bool
) -> None:
    assert wanted(event_type, patterns) is expected
