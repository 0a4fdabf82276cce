"""Periodic jobs (overdue follow-ups, SLA clocks...) that are correct with several replicas.

A job claims due rows with `FOR UPDATE SKIP LOCKED`, changes them and emits their events in the
same transaction, so whichever replica claims a row publishes it exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger("kehu.scheduler")

Job = Callable[[FastAPI, AsyncSession], Awaitable[int]]


def passes(app: FastAPI) -> Counter[str]:
    """How many passes of each periodic job `app` has finished: what a test waits on to know
    that every replica has had its turn at the due rows, instead of sleeping."""
    counts: Counter[str] | None = getattr(app.state, "job_passes", None)
    if counts is None:
        counts = app.state.job_passes = Counter()
    return counts


def periodic(
    name: str, job: Job, interval_s: Callable[[FastAPI], float]
) -> Callable[[FastAPI], Awaitable[None]]:
    """A background task running `job` in its own transaction every `interval_s(app)` seconds.

    The job returns how many items it handled; a full batch runs again at once.
    """

    async def run(app: FastAPI) -> None:
        while True:
            handled = 0
            try:
                async with app.state.sessions.begin() as session:
                    handled = await job(app, session)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduled job %s failed; retrying", name)
            passes(app)[name] += 1
            if not handled:
                await asyncio.sleep(interval_s(app))

    return run
