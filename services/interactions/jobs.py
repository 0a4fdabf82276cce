"""Replica-safe periodic jobs: overdue follow-ups, due revisits and care dates.

Each job reads time from the app's clock (`app.state.clock`), so tests move it."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.interactions import service
from services.interactions.config import Settings
from shared.context import RequestContext
from shared.scheduler import periodic


async def overdue_job(app: FastAPI, session: AsyncSession) -> int:
    return await service.publish_overdue(RequestContext.system(session, app.state))


async def revisit_job(app: FastAPI, session: AsyncSession) -> int:
    ctx = RequestContext.system(session, app.state)
    return await service.create_due_revisits(ctx) + await service.create_due_care(ctx)


def _settings(app: FastAPI) -> Settings:
    settings: Settings = app.state.settings
    return settings


_overdue = periodic("followups-overdue", overdue_job, lambda app: _settings(app).overdue_interval_s)
_revisits = periodic(
    "revisits-and-care", revisit_job, lambda app: _settings(app).revisit_interval_s
)


async def overdue_scheduler(app: FastAPI) -> None:
    """Publish `followup.overdue` once per follow-up that passed its due time."""
    await _overdue(app)


async def revisit_scheduler(app: FastAPI) -> None:
    """Create revisit follow-ups when due by cadence, and care follow-ups before dates."""
    await _revisits(app)
