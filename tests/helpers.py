"""Test helpers: event contracts made per test, a topic reader, a cuttable TCP proxy, and
services as real uvicorn processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from shared.devstack import ROOT, free_port, wait_for_port
from shared.events.registry import EventContract, contract


def make_contract(topic: str) -> type[EventContract]:
    """A fresh event contract on `topic`, so tests never see each other's events."""

    @contract(f"test.{uuid.uuid4().hex[:10]}.happened", 1, topic, "Something happened (test)")
    class Happened(EventContract):
        customer_id: str
        n: int

    return Happened


def unique_topic() -> str:
    return f"kehu.test.{uuid.uuid4().hex[:10]}"


async def read_topic(
    bootstrap: str, topic: str, *, at_least: int = 0, timeout: float = 30.0
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of `topic` (all partitions, from the start).

    Reads at least up to each partition's end offset as of the call, so a scan sees the whole
    topic however long it is, and keeps reading until `at_least` records have arrived.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} never appeared"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[Any, Any]] = []

        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while (len(records) < at_least or await behind()) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def start_group_at_end(bootstrap: str, group_id: str, topics: Iterable[str]) -> None:
    """Commit `group_id`'s offsets at the topics' present ends, so a consumer of that new
    group starts with what comes next instead of replaying every earlier suite's events (the
    product's consumers start from the earliest offset, and late in a run that replay can take
    longer than a test waits). A topic that does not exist yet has nothing to skip."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(topic, partition)
            for topic in sorted(set(topics))
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if tps:
            consumer.assign(tps)
            await consumer.commit(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})


async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (relay, consumers, jobs) and yield an in-process client.

    Use as `async for client in serve(app): ...` inside a fixture or test.
    """
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kehu") as client:
            yield client


async def rotate_back(engine: Any, metadata: Any, rotated: Any, before: Any) -> None:
    """Undo a key-rotation test: every value back under the original key, keyring restored.

    The shared test databases are also read by other processes (the fuzzer's services) that
    only know the original keyring.
    """
    from shared import crypto

    crypto.configure(
        crypto.Keyring(keys=rotated.keys, active=before.active, index_key=before.index_key)
    )
    await crypto.reencrypt(engine, metadata)
    crypto.configure(before)


@dataclass
class ServiceProcess:
    """One service as `uvicorn` in its own process, logging to a file."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"services.{self.name}.main:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for_port(self.port, timeout=60)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no LeaveGroup."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def wait_ready(url: str, timeout: float = 90, probe: str = "ready") -> dict[str, Any]:
    """The body of `/health/<probe>` once it answers 200 (`ready`: database, broker, consumer
    group joined; `live`: up and answering)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/health/{probe}", timeout=5)
            body = response.json()
            if response.status_code == 200:
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not {probe} after {timeout}s: {body}")
