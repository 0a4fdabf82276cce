"""`make bench`: raw baselines and Kehu's figures measured in one run, written to bench/report.*.

Every figure is reported beside the raw baseline it should be compared with and the target from
the quality handbook, as a ratio: the machine is noisy, so only same-run ratios mean anything.
Load loops are bounded in count and time and target 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.engine import make_url

from bench.harness import BENCH_DIR, Figure, Report, start_uvicorn, stop, wrk
from bench.scenarios import SCENARIOS
from shared.devstack import ROOT, infrastructure, migrate

# -- raw baselines ---------------------------------------------------------------------------


async def raw_insert(dsn: str, n: int = 20_000, concurrency: int = 8) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_rows (id uuid PRIMARY KEY, name text, "
        "amount numeric, created_at timestamptz DEFAULT now())"
    )
    per = n // concurrency

    async def worker() -> None:
        async with pool.acquire() as conn:
            for i in range(per):
                await conn.execute(
                    "INSERT INTO bench_rows (id, name, amount) VALUES ($1, $2, $3)",
                    uuid.uuid4(),
                    f"name {i}",
                    i,
                )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return per * concurrency / elapsed


async def raw_row_and_outbox(dsn: str, n: int = 8_000, concurrency: int = 8) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_rows2 (id uuid PRIMARY KEY, name text, amount numeric)"
    )
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_outbox (id bigserial PRIMARY KEY, "
        "event_id uuid, type text, data jsonb, published_at timestamptz)"
    )
    per = n // concurrency

    async def worker() -> None:
        async with pool.acquire() as conn:
            for i in range(per):
                async with conn.transaction():
                    row = uuid.uuid4()
                    await conn.execute(
                        "INSERT INTO bench_rows2 VALUES ($1, $2, $3)", row, f"name {i}", i
                    )
                    await conn.execute(
                        "INSERT INTO bench_outbox (event_id, type, data) VALUES ($1, $2, $3)",
                        uuid.uuid4(),
                        "bench.created.v1",
                        json.dumps({"id": str(row), "n": i}),
                    )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return per * concurrency / elapsed


async def raw_produce(bootstrap: str, topic: str, n: int = 100_000) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    value = b"x" * 300
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=str(i % 1000).encode()) for i in range(n)]
        await asyncio.gather(*futures)
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        started = time.perf_counter()
        deadline = started + 120
        while got < n and time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got += sum(len(v) for v in batch.values())
        return got / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- the run ---------------------------------------------------------------------------------


async def run_raw(report: Report, dsn: str, bootstrap: str) -> None:
    print("raw baselines", flush=True)
    report.raw_figure(
        "asyncpg_insert", "asyncpg INSERT, 8 concurrent", await raw_insert(dsn), "rows/s"
    )
    report.raw_figure(
        "row_outbox_tx",
        "asyncpg row + outbox in one tx, 8 concurrent",
        await raw_row_and_outbox(dsn),
        "tx/s",
    )
    topic = f"bench.raw.{uuid.uuid4().hex[:6]}"
    n = 100_000
    report.raw_figure(
        "kafka_produce",
        "aiokafka produce 300 B, acks=all, batched",
        await raw_produce(bootstrap, topic, n),
        "msg/s",
    )
    report.raw_figure(
        "kafka_consume",
        "aiokafka consume, getmany",
        await raw_consume(bootstrap, topic, n),
        "msg/s",
    )


def run_http_raw(report: Report, env: dict[str, str]) -> None:
    process, port = start_uvicorn("bench.bare_app:app", env)
    try:
        get = wrk(f"http://127.0.0.1:{port}/small")
        report.raw_figure(
            "http_get", "uvicorn + FastAPI GET small JSON, 1 worker", get["rps"], "req/s"
        )
        post = wrk(
            f"http://127.0.0.1:{port}/items",
            script=str(BENCH_DIR / "post.lua"),
            env={
                "BENCH_PATH": "/items",
                "BENCH_BODY": '{"name": "n{{n}}", "email": "{{n}}@x.io", "amount": 1}',
            },
        )
        report.raw_figure(
            "http_post_insert",
            "uvicorn + FastAPI POST, validate + 1 asyncpg insert",
            post["rps"],
            "req/s",
        )
    finally:
        stop(process)


def merge_previous(report: Report, previous: dict[str, Any], only: str) -> str:
    """A partial run (`--only`) replaces its own figures in the last report and keeps the
    others where they were, with the raw baselines their ratios were computed against;
    returns the header's note on what was re-run."""
    fresh = {f.name: f for f in report.figures if f.note != "raw baseline"}
    merged = [fresh.pop(f["name"], None) or Figure(**f) for f in previous.get("figures", [])]
    report.figures = merged + list(fresh.values())
    report.raw = {**report.raw, **previous.get("raw", {})}
    rerun = f" (`--only {only}` re-run {report.started_at})"
    report.started_at = str(previous.get("started_at", report.started_at)).split(" (")[0]
    return rerun


def write_report(report: Report, only: str | None = None) -> None:
    json_path, md_path = BENCH_DIR / "report.json", BENCH_DIR / "report.md"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    rerun = merge_previous(report, previous, only) if only and previous else ""
    # Sections written by hand below the generated table (## headings) stay.
    old_md = md_path.read_text() if md_path.exists() else ""
    sections = old_md[old_md.index("\n## ") :] if "\n## " in old_md else ""
    extra = {
        k: v for k, v in previous.items() if k not in ("started_at", "machine", "figures", "raw")
    }
    data = {**asdict(report), **extra}
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Kehu benchmark report",
        "",
        f"Run {report.started_at}{rerun} on {report.machine['cpus']} cores, "
        f"{report.machine['python']}, embedded PostgreSQL 18 + Tansu. Reproduce with "
        "`make bench`. Compare ratios, not absolute numbers: they are measured in the same run.",
        "",
        "| figure | value | unit | vs baseline | ratio | target | meets |",
        "|---|---:|---|---|---:|---|---|",
    ]
    for f in report.figures:
        lines.append(
            f"| {f.name} | {f.value:,.1f} | {f.unit} | {f.baseline or ''} | "
            f"{'' if f.ratio is None else f'{f.ratio:.2f}x'} | {f.target or ''} | "
            f"{'' if f.meets_target is None else ('yes' if f.meets_target else 'NO')} |"
        )
    notes = [f"- {f.name}: {f.note}" for f in report.figures if f.note and f.note != "raw baseline"]
    if notes:
        lines += ["", "Notes:", *notes]
    md_path.write_text("\n".join(lines) + "\n" + sections)
    print(f"wrote {BENCH_DIR / 'report.md'}", flush=True)


async def main_async(args: argparse.Namespace) -> int:
    if not shutil.which("wrk"):
        print("wrk is needed for HTTP figures: apt-get install wrk", file=sys.stderr)
        return 2
    report = Report(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    )
    state = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    os.environ.setdefault("KEHU_PG_UNSAFE_FAST", "0")
    try:
        with infrastructure(state, fixed_ports=False) as (database_url, bootstrap):
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "KEHU_ENV": "test",
                "KEHU_STATE_DIR": str(state),
                "PYTHONPATH": str(ROOT),
                "KEHU_RATE_LIMIT_PER_S": "0",
                # The Kafka path is measured; the feeds' ports are not known to analytics here.
                "ANALYTICS_CATCHUP_EVERY_S": "0",
            }
            migrate(env)
            os.environ.update(env)
            dsn = make_url(database_url).set(database="kehu_bench").render_as_string(False)
            admin = await asyncpg.connect(database_url)
            await admin.execute("CREATE DATABASE kehu_bench")
            await admin.close()
            await run_raw(report, dsn, bootstrap)
            run_http_raw(report, {**env, "BENCH_DSN": dsn})
            for fn in SCENARIOS:
                if args.only and args.only not in fn.__name__:
                    continue
                print(fn.__name__, flush=True)
                try:
                    await fn(report, env)
                except Exception as exc:  # one broken scenario must not hide the others
                    report.add(Figure(fn.__name__, 0, "", note=f"FAILED: {exc!r}"))
    finally:
        shutil.rmtree(state, ignore_errors=True)
    write_report(report, args.only)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "--only",
        help="run only scenarios whose name contains this (after the raw baselines); their "
        "figures replace the same ones in the last report, the others stay",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
