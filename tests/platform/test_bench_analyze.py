"""`bench.harness.analyze` gives every database of the product statistics for its tables'
present size, as autovacuum keeps a server in service, so the hot-paths bench does not measure
plans made while the seeded tables held a page or two."""

from __future__ import annotations

import os
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from bench.harness import analyze


async def test_analyze_gives_each_product_database_current_statistics(
    fresh_database: Callable[[str], str],
) -> None:
    url = await fresh_database("profiles")  # type: ignore[misc]
    name = make_url(url).database
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute("CREATE TABLE grown (id int PRIMARY KEY, note text)")
        await conn.execute(
            "INSERT INTO grown SELECT n, repeat('x', 200) FROM generate_series(1, 5000) AS n"
        )
        before = await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'grown'")

        analyzed = await analyze(os.environ["DATABASE_URL"])

        assert name in analyzed
        assert "postgres" not in analyzed  # the server's own databases are not the product's
        after = await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'grown'")
        last = await conn.fetchval(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'grown'"
        )
    finally:
        await conn.close()
    assert before < 0  # never analyzed nor vacuumed: the planner guesses from the page count
    assert after == 5000
    assert last is not None
