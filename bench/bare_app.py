"""Raw baselines for HTTP: a bare FastAPI app (GET small JSON; POST validate + one insert)."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    email: str
    amount: float


@asynccontextmanager
async def lifespan(app: FastAPI) -> Any:
    dsn = os.environ.get("BENCH_DSN")
    app.state.pool = await asyncpg.create_pool(dsn, min_size=4, max_size=8) if dsn else None
    if app.state.pool is not None:
        await app.state.pool.execute(
            "CREATE TABLE IF NOT EXISTS bench_http (id uuid PRIMARY KEY, name text, email text, "
            "amount numeric)"
        )
    yield
    if app.state.pool is not None:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/small")
async def small() -> dict[str, Any]:
    return {"id": "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e", "name": "Kehu", "tier": "A"}


@app.post("/items", status_code=201)
async def create(item: Item) -> dict[str, str]:
    item_id = uuid.uuid4()
    await app.state.pool.execute(
        "INSERT INTO bench_http VALUES ($1, $2, $3, $4)",
        item_id,
        item.name,
        item.email,
        item.amount,
    )
    return {"id": str(item_id)}
