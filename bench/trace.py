"""`python -m bench.trace`: the SQL each hot path sends, as PostgreSQL logs it.

Starts a throwaway stack with `log_statement = all`, sends each hot path's request a few times
(the first ones warm caches), and prints the statements the server ran for the last one, from
the backend that served it. This is how the same-work baselines in `bench/samework.py` were
written, and how to check that they still match the product after a change.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import asyncpg
import httpx

from bench.hotpaths import HOT_PATHS, HotPath, prepare_paths
from bench.scenarios import Services, bearer
from shared.devstack import ROOT, infrastructure, migrate

PREFIX = "%m [%p] %d "
LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (\S+) (?:LOG|ERROR):\s+(.*)$")


async def trace(path: HotPath, client: httpx.AsyncClient, log: Path, width: int = 220) -> list[str]:
    for _ in range(3):
        await path.send(client)
    await asyncio.sleep(0.3)
    start = log.stat().st_size  # noqa: ASYNC240
    response = await path.send(client)
    await asyncio.sleep(0.3)
    tail = log.read_bytes()[start:]  # noqa: ASYNC240
    lines = tail.decode(errors="replace").splitlines()
    by_backend: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        m = LINE.match(line)
        if m and m.group(2) == f"kehu_{path.service}":
            by_backend[m.group(1)].append(m.group(3))
    marker = path.marker
    served = [s for s in by_backend.values() if any(marker in x for x in s)]
    out = [f"== {path.name}: HTTP {response.status_code}"]
    for statements in served or by_backend.values():
        out += [f"  {s[:width]}" for s in statements]
        out.append("  --")
    return out


async def main_async(only: str | None, width: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="kehu-trace-"))
    os.environ.setdefault("KEHU_PG_UNSAFE_FAST", "1")
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
                "ANALYTICS_CATCHUP_EVERY_S": "0",
            }
            migrate(env)
            os.environ.update(env)
            admin = await asyncpg.connect(database_url)
            await admin.execute("ALTER SYSTEM SET log_statement = 'all'")
            await admin.execute(f"ALTER SYSTEM SET log_line_prefix = '{PREFIX}'")
            await admin.execute("SELECT pg_reload_conf()")
            services = Services(env, sorted({p.service for p in HOT_PATHS}))
            try:
                await services.wait_ready()
                headers = {"Authorization": f"Bearer {bearer()}"}
                async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                    paths = await prepare_paths(client, services.urls)
                    log = state / "pgdata" / "server.log"
                    for path in paths:
                        if only and only not in path.name:
                            continue
                        lines = await trace(path, client, log, width)
                        print("\n".join(lines), flush=True)
            finally:
                services.stop()
                await admin.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.trace")
    parser.add_argument("--only", help="only the paths whose name contains this")
    parser.add_argument("--width", type=int, default=220, help="characters per statement")
    args = parser.parse_args()
    asyncio.run(main_async(args.only, args.width))


if __name__ == "__main__":
    main()
