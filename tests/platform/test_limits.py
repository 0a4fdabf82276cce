"""Abuse limits: body size (413) and per-client rate limiting (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Callable

from services.profiles.config import Settings
from services.profiles.main import create_app
from tests.conftest import auth
from tests.helpers import serve


async def test_oversized_body_is_413_problem(token: Callable[..., str]) -> None:
    async for client in serve(create_app(Settings(max_body_bytes=1000))):
        response = await client.post(
            "/events", content=b"x" * 5000, headers={**auth(token()), "content-type": "text/plain"}
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "1000 bytes" in response.json()["detail"]


async def test_rate_limit_per_client_with_retry_after(token: Callable[..., str]) -> None:
    settings = Settings(rate_limit_per_s=1, rate_limit_burst=3)
    alice, bob = auth(token("admin", subject="alice")), auth(token("admin", subject="bob"))
    async for client in serve(create_app(settings)):
        statuses = [(await client.get("/events", headers=alice)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/events", headers=alice)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        assert (await client.get("/events", headers=bob)).status_code == 200, "per client"
        assert (await client.get("/health/live")).status_code == 200, "health is never limited"
