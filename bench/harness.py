"""The bench harness: figures, the report, and the tools that load a service and time it.

`bench/run.py` runs the raw baselines and then every scenario of `bench/scenarios.py`; both
measure with what is here and add their figures to one `Report`.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.devstack import ROOT, free_port, wait_for_port

BENCH_DIR = ROOT / "bench"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: str | None = None
    ratio: float | None = None
    target: str | None = None
    meets_target: bool | None = None
    note: str = ""


@dataclass
class Report:
    started_at: str
    machine: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, float] = field(default_factory=dict)
    # The hot paths against their same-work baselines (bench/hotpath_bench.py), one row each.
    hot: list[dict[str, Any]] = field(default_factory=list)
    hot_meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(
            f"  {figure.name:<58} {figure.value:>12,.1f} {figure.unit}"
            + (f"  ({figure.ratio:.2f}x {figure.baseline})" if figure.ratio else ""),
            flush=True,
        )
        return figure

    def raw_figure(self, key: str, name: str, value: float, unit: str) -> None:
        self.raw[key] = value
        self.add(Figure(name, value, unit, note="raw baseline"))

    def compared(
        self,
        name: str,
        value: float,
        unit: str,
        baseline_key: str,
        target_ratio: float | None = None,
        note: str = "",
    ) -> None:
        base = self.raw.get(baseline_key)
        ratio = value / base if base else None
        target = f">= {target_ratio}x {baseline_key}" if target_ratio else None
        meets = (ratio >= target_ratio) if (ratio is not None and target_ratio) else None
        self.add(Figure(name, value, unit, baseline_key, ratio, target, meets, note))


# -- loading a service -------------------------------------------------------------------------


def start_uvicorn(target: str, env: dict[str, str], factory: bool = False) -> tuple[Any, int]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        args.append("--factory")
    # Warnings and errors of the services under load go to a log, for when a figure is odd.
    log_dir = Path(tempfile.gettempdir()) / "kehu-bench-logs"
    log_dir.mkdir(exist_ok=True)
    with (log_dir / f"{target.split(':')[0]}.log").open("a") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    wait_for_port(port, 60)
    time.sleep(0.5)
    return process, port


def stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mb(process: Any) -> float:
    import psutil

    return float(psutil.Process(process.pid).memory_info().rss) / 2**20


def wrk(
    url: str,
    seconds: int = 8,
    connections: int = 32,
    script: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Closed-loop maximum throughput (req/s) and latency percentiles (ms) with wrk."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        args += ["-s", script]
    done = subprocess.run(
        [*args, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**os.environ, **(env or {})},
    )
    out = done.stdout
    if done.stderr.strip():  # the scripts report their first non-2xx answer here
        print(done.stderr.strip()[:600], file=sys.stderr)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(
            f"wrk gave no rate (exit {done.returncode}): {out[-300:]!r} {done.stderr[-300:]!r}"
        )
    rate = float(found.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result = {"rps": rate, "non2xx": float(non2xx.group(1)) if non2xx else 0.0}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            result[f"p{pct}_ms"] = (
                value / 1000 if unit == "us" else value * (1000 if unit == "s" else 1)
            )
    return result


async def open_loop(
    call: Callable[[int], Awaitable[bool]], rate: float, seconds: float
) -> list[float]:
    """Open-loop load: `call(i)` started every 1/`rate` s for `seconds`, whether the calls
    before it have returned or not. Returns the latency (ms) of every call that returned True,
    sorted, each counted from when it was due, so a stall counts against every call it delayed
    (no coordinated omission)."""
    latencies: list[float] = []
    started = time.perf_counter()

    async def one(i: int, due: float) -> None:
        if await call(i):
            latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(int(rate * seconds)):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    latencies.sort()
    return latencies


async def fixed_rate(
    send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    base_url: str,
    rate: float,
    seconds: float = 6.0,
) -> dict[str, float]:
    """Open-loop load at `rate` req/s: latency percentiles without coordinated omission."""
    errors = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:

        async def one(i: int) -> bool:
            nonlocal errors
            try:
                response = await send(client, i)
            except httpx.HTTPError:
                errors += 1
                return False
            if response.status_code >= 400:
                errors += 1
            return True

        latencies = await open_loop(one, rate, seconds)
    return {
        "rate": rate,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "errors": errors,
    }


# -- the database server in steady state -------------------------------------------------------

# WAL segments made before anything is measured (16 MB each): about what one hot path writes,
# both sides' runs together, with the consumers' work (1 GB for POST /customers).
WARM_WAL_SEGMENTS = 128


async def steady_wal(database_url: str, segments: int = WARM_WAL_SEGMENTS) -> float:
    """Give a fresh cluster the WAL a server in service has: segments ready ahead of the
    insert position. A new cluster has none, so every 16 MB of WAL the commit that crosses
    into the next segment first creates it (16 MB of zeros and a flush) while every commit
    behind it waits: at the write paths' half rates (5-7 MB of WAL a second) a stall every
    2-3 s, as long as the disk takes, often enough to set a run's p99. A server in service
    instead renames the segments each checkpoint frees. This makes `segments` of them and
    lets a checkpoint free them (`checkpoint` between paths frees what each path wrote).
    Returns the seconds it took."""
    import asyncpg

    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(segments):
            await conn.execute("SELECT pg_logical_emit_message(false, 'kehu-bench', 'warm')")
            await conn.execute("SELECT pg_switch_wal()")
    finally:
        await conn.close()
    await checkpoint(database_url)
    return time.monotonic() - started


async def analyze(database_url: str) -> list[str]:
    """ANALYZE every database of the product (`kehu_*`); the databases analyzed.

    What a server in service has from autovacuum: statistics for the tables' present size.
    Each pooled connection keeps the generic plan its prepared statement settled on after five
    runs until the tables' statistics change; a plan made while a table held a page or two is
    a sequential scan, and it stays one as the table grows until autovacuum next analyzes it.
    Measured on POST /customers after the seeding, in paced runs: the duplicate check read 135
    pages per create on average (up to 1,500) instead of 4, and PostgreSQL spent 2.3-3.1 ms of
    CPU per create instead of the baseline's 1.3-1.7; analyzed first, 1.2-1.4 ms."""
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(database_url)
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'kehu\\_%' ORDER BY datname"
        )
    finally:
        await conn.close()
    for (name,) in names:
        conn = await asyncpg.connect(
            make_url(database_url).set(database=name).render_as_string(hide_password=False)
        )
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
    return [name for (name,) in names]


async def checkpoint(database_url: str) -> None:
    """A checkpoint: the WAL segments written since the last one become ready for reuse."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
