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

from bench.harness import BENCH_DIR, Figure, Report, start_uvicorn, steady_wal, stop, wrk
from bench.hotpath_bench import (
    TARGET_P99_MS,
    TARGET_RATIO,
    hot_paths,
    product_tree,
    remove_tree,
    write_before,
)
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


def busy_text(cpu: dict[str, float]) -> str:
    """Cores busy by owner, busiest first, with the total: "1.31 (profiles 0.58, ...)"."""
    shown = ", ".join(f"{name} {cores:.2f}" for name, cores in cpu.items() if cores >= 0.02)
    return f"{sum(cpu.values()):.2f} ({shown})"


def spread(row: dict[str, Any], prefix: str = "") -> str:
    """ " [lowest-highest]" of a path's paced runs' p99s, when there were several."""
    runs = row.get(f"{prefix}p99_ms_at_half_runs") or []
    return f" [{min(runs):.1f}-{max(runs):.1f}]" if len(runs) > 1 else ""


def hot_table(report: Report) -> list[str]:
    """The hot paths: product vs same-work baseline, before/after, p99 at half, 1 -> 2 workers."""
    if not report.hot:
        return []

    def num(value: Any, fmt: str = ",.0f") -> str:
        return "" if value is None else format(value, fmt)

    def ok(flag: bool | None) -> str:
        return "" if flag is None else ("yes" if flag else "NO")

    lines = [
        "## Hot paths against same-work baselines",
        "",
        "Each baseline (`bench/samework.py`) is FastAPI + asyncpg doing exactly the path's "
        "statements, checks and crypto on the same databases, and wakes the product's relay "
        "after each write as the product's commits do (so both sides' events reach the broker "
        "and the consumers at the same pace); both measured with "
        f"wrk {report.hot_meta.get('wrk', '')}, {report.hot_meta.get('seconds', '')} s each, "
        "one worker, in this run, on a PostgreSQL server whose WAL segments are ready for "
        "reuse as in a server in service (made and checkpointed before the run, and a "
        "checkpoint before each path), and whose tables are analyzed before each path, as "
        "autovacuum keeps a server in service (`bench.harness.analyze`: the seeding and each "
        "path grow them many times over). Ratio = Kehu / baseline (target >= "
        f"{TARGET_RATIO}x); before = {report.hot_meta.get('before') or 'not measured'}. "
        f"p99 at half of Kehu's maximum rate: 16 wrk connections pacing their requests to that "
        f"rate in total (target < {TARGET_P99_MS:.0f} ms), and the baseline's p99 at that "
        "same rate beside it (what the machine gives without Kehu); with several paced runs "
        "each (alternating, each from no consumer lag and no pending re-rank), the median "
        "run's p99 and the lowest and highest in brackets. "
        "2 workers: `KEHU_WORKERS=2`, one run per path from the same steady state, "
        "scaling = 2-worker / 1-worker maximum.",
        "",
        "| path | baseline req/s | Kehu req/s | ratio | before | >= 0.6x | p99 at half (rate) "
        "| < 25 ms | 2 workers req/s | scaling 1 -> 2 |",
        "|---|---:|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for row in report.hot:
        ratio = row.get("ratio")
        p99 = row.get("p99_ms_at_half")
        floor = row.get("baseline_p99_ms_at_half")
        bare = "" if floor is None else f"; baseline {floor:.1f} ms{spread(row, 'baseline_')}"
        lines.append(
            f"| {row['path']} | {num(row['baseline_rps'])} | {num(row['kehu_rps'])} | "
            f"{num(ratio, '.2f')}x | {num(row.get('before_ratio'), '.2f')}"
            f"{'x' if row.get('before_ratio') is not None else ''} | "
            f"{ok(None if ratio is None else ratio >= TARGET_RATIO)} | "
            f"{num(p99, '.1f')} ms{spread(row)} ({num(row.get('half_rate'))}/s{bare}) | "
            f"{ok(None if p99 is None else p99 < TARGET_P99_MS)} | "
            f"{num(row.get('kehu_rps_2_workers'))} | {num(row.get('scaling_1_to_2'), '.2f')}x |"
        )
    errors = [
        f"{r['path']}: {r['kehu_non2xx']:.0f} non-2xx from Kehu, {r['baseline_non2xx']:.0f} "
        f"from the baseline, {r['errors_at_half']} failed at half rate"
        for r in report.hot
        if r["kehu_non2xx"] or r["baseline_non2xx"] or r["errors_at_half"]
    ]
    profiles = [
        f"{r['path']}: [{r['profile']}]({r['profile'].removeprefix('bench/')})"
        for r in report.hot
        if r.get("profile")
    ]
    if errors:
        lines += ["", "Errors:", *[f"- {e}" for e in errors]]
    cpu = [
        f"{r['path']}: Kehu's run {busy_text(r['cpu_at_half'])}; "
        f"the baseline's {busy_text(r['baseline_cpu_at_half'])}"
        for r in report.hot
        if r.get("cpu_at_half") and r.get("baseline_cpu_at_half")
    ]
    if cpu:
        lines += [
            "",
            f"CPU in use during the paced runs (cores busy of {os.cpu_count()}: the services by "
            "name, PostgreSQL, the broker, the kernel's threads such as writeback, and wrk):",
            *[f"- {c}" for c in cpu],
        ]
    if profiles:
        lines += ["", "Profiles of the paths below target:", *[f"- {p}" for p in profiles]]
    return [*lines, ""]


def merge_previous(report: Report, previous: dict[str, Any], only: str) -> None:
    """A partial run (`--only`) replaces its own figures in the last report and keeps the
    others where they were, with the raw baselines their ratios were computed against; the
    run's time says which scenarios were re-run when (the earlier re-runs' notes kept)."""
    fresh = {f.name: f for f in report.figures if f.note != "raw baseline"}
    merged: list[Figure] = []
    last_rerun: int | None = None
    for kept in previous.get("figures", []):
        rerun_figure = fresh.pop(kept["name"], None)
        if rerun_figure is not None:
            last_rerun = len(merged)
        merged.append(rerun_figure or Figure(**kept))
    # A figure the last report did not have goes beside the re-run scenario's others.
    at = len(merged) if last_rerun is None else last_rerun + 1
    report.figures = merged[:at] + list(fresh.values()) + merged[at:]
    report.raw = {**report.raw, **previous.get("raw", {})}
    if not report.hot:  # the hot paths were not re-run: their rows stay
        report.hot = previous.get("hot", [])
        report.hot_meta = previous.get("hot_meta", {})
    base, _, notes = str(previous.get("started_at", report.started_at)).partition(" (")
    kept = [
        note
        for note in notes.removesuffix(")").split(", ")
        if note and not note.startswith(f"`--only {only}`")
    ]
    reruns = ", ".join([*kept, f"`--only {only}` re-run {report.started_at}"])
    report.started_at = f"{base} ({reruns})"


def write_report(report: Report, only: str | None = None) -> None:
    json_path, md_path = BENCH_DIR / "report.json", BENCH_DIR / "report.md"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    if only and previous:
        merge_previous(report, previous, only)
    json_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    lines = [
        "# Kehu benchmark report",
        "",
        f"Run {report.started_at} on {report.machine['cpus']} cores, "
        f"{report.machine['python']}, embedded PostgreSQL 18 + Tansu. Reproduce with "
        "`make bench`. Compare ratios, not absolute numbers: they are measured in the same run.",
        "",
        *hot_table(report),
        "## Pipeline, bare baselines and other figures",
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
    if report.notes:
        lines += ["", *report.notes]
    # What the figures mean and where the missed targets spend their time, written by hand.
    closing = BENCH_DIR / "closing-note.md"
    if closing.exists():
        lines += ["", closing.read_text().rstrip()]
    md_path.write_text("\n".join(lines) + "\n")
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
    product = product_tree(args.product_ref) if args.product_ref else None
    options = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "path": args.path,
        "profile": args.profile,
        "workers2": not args.no_workers2,
        "product_root": product,
        "product_ref": args.product_ref,
    }

    def wanted(name: str) -> bool:
        return not args.only or args.only in name

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
            if product is not None:  # the product's own migrations
                import subprocess

                subprocess.run(  # noqa: ASYNC221 (set-up, before any load)
                    [sys.executable, "-m", "shared.migrate"],
                    env={**env, "PYTHONPATH": str(product)},
                    cwd=product,
                    check=True,
                )
            else:
                migrate(env)
            os.environ.update(env)
            dsn = make_url(database_url).set(database="kehu_bench").render_as_string(False)
            admin = await asyncpg.connect(database_url)
            await admin.execute("CREATE DATABASE kehu_bench")
            await admin.close()
            print(f"WAL segments made ready in {await steady_wal(database_url):.1f} s", flush=True)
            if not args.no_raw:
                await run_raw(report, dsn, bootstrap)
                run_http_raw(report, {**env, "BENCH_DSN": dsn})
            if wanted("hot_paths"):
                print("hot_paths", flush=True)
                await hot_paths(report, env, options)
            for fn in SCENARIOS:
                if not wanted(fn.__name__) or product:
                    continue
                print(fn.__name__, flush=True)
                try:
                    await fn(report, env)
                except Exception as exc:  # one broken scenario must not hide the others
                    report.add(Figure(fn.__name__, 0, "", note=f"FAILED: {exc!r}"))
    finally:
        shutil.rmtree(state, ignore_errors=True)
        if product is not None:
            remove_tree(product)
    if args.product_ref:
        write_before(report.hot, args.product_ref)
        print(f"wrote {BENCH_DIR / 'hotpaths_before.json'}", flush=True)
        return 0
    write_report(report, args.only)
    return 0


def rewrite_report() -> int:
    """Render bench/report.md again from bench/report.json (e.g. after editing the note)."""
    data = json.loads((BENCH_DIR / "report.json").read_text())
    figures = [Figure(**f) for f in data.pop("figures")]
    write_report(Report(**data, figures=figures))
    return 0


def main() -> int:
    if sys.argv[1:] == ["--rewrite-report"]:
        return rewrite_report()
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument(
        "--only",
        help="run only scenarios whose name contains this (hot_paths, relay_and_consumer_drain, "
        "service_endpoints, analytics_pipeline_and_tiers, console_dashboard); their figures "
        "replace the same ones in the last report, the others stay",
    )
    parser.add_argument("--path", help="hot paths: only those whose name contains this")
    parser.add_argument("--seconds", type=int, default=5, help="hot paths: wrk seconds per run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="hot paths: alternating baseline/Kehu runs each"
    )
    parser.add_argument(
        "--profile", action="store_true", help="hot paths: py-spy profile of paths below target"
    )
    parser.add_argument("--no-workers2", action="store_true", help="hot paths: skip 2 workers")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw baselines")
    parser.add_argument(
        "--product-ref",
        help="hot paths: run the product at this git commit against this tree's baselines and "
        "write bench/hotpaths_before.json instead of the report",
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
