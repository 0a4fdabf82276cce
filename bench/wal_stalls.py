"""`python -m bench.wal_stalls`: why `make bench` readies its server's WAL before measuring.

Runs one commit load on a throwaway embedded PostgreSQL twice, each time on a new cluster:
`RATE` commits a second from 16 connections, each writing about 20 KB of WAL (about what the
write paths write per request at half rate, with what the consumers write back), for
`SECONDS`. The first cluster is fresh; the second is prepared by `bench.harness.steady_wal`
(segments made, then a checkpoint that frees them for reuse). It prints each run's commit
latency percentiles (each from when the commit was due: `bench.harness.open_loop`) and WAL
rate. On a fresh cluster, the commit that fills a 16 MB segment first creates the next one
(written and flushed) while every commit behind it waits.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.harness import open_loop, steady_wal
from shared.devstack import EmbeddedPostgres, free_port

RATE = 300
SECONDS = 20
CONNECTIONS = 16


async def commit_load(url: str) -> dict[str, float]:
    """`RATE` commits a second for `SECONDS`; their latency percentiles (ms) and WAL MB/s."""
    pool = await asyncpg.create_pool(url, min_size=CONNECTIONS, max_size=CONNECTIONS)
    assert pool is not None

    async def commit(i: int) -> bool:
        async with pool.acquire() as conn:
            # 20,000 random hex digits: too random for TOAST to compress, ~20 KB of WAL.
            await conn.execute("INSERT INTO load (pad) VALUES ($1)", os.urandom(10_000).hex())
        return True

    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE load (id bigserial PRIMARY KEY, pad text)")
            start_lsn = await conn.fetchval("SELECT pg_current_wal_lsn()")
        began = time.monotonic()
        latencies = await open_loop(commit, RATE, SECONDS)
        elapsed = time.monotonic() - began
        async with pool.acquire() as conn:
            wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", start_lsn)
    finally:
        await pool.close()
    n = len(latencies)
    return {
        "p50": latencies[n // 2],
        "p99": latencies[int(n * 0.99)],
        "p99.9": latencies[int(n * 0.999)],
        "max": latencies[-1],
        "wal_mb_per_s": float(wal) / elapsed / 2**20,
    }


async def run(ready: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kehu-wal-") as data:
        server = EmbeddedPostgres(Path(data) / "pgdata", free_port())
        server.start()
        try:
            if ready:
                await steady_wal(server.url)
            return await commit_load(server.url)
        finally:
            server.stop()


def main() -> None:
    for ready in (False, True):
        figures = asyncio.run(run(ready))
        name = "segments ready (steady_wal)" if ready else "fresh cluster"
        print(
            f"{name:<28} commit p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
            f"p99.9 {figures['p99.9']:.1f} ms, max {figures['max']:.1f} ms; "
            f"WAL {figures['wal_mb_per_s']:.1f} MB/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
