"""The furniture every service shares: auth, problem+json, the event feed, readiness, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app
from services.profiles.models import outbox as profiles_outbox
from shared.devstack import TansuBroker, free_port
from shared.outbox import Outbox
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import TcpProxy, eventually, make_contract, serve, unique_topic

PROBLEM = "application/problem+json"


@pytest.fixture
def app() -> FastAPI:
    return create_app(ProfilesSettings(outbox_poll_interval_s=0.2))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for c in serve(app):
        yield c


async def test_missing_token_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/events")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["type"].endswith("/unauthorized") and body["status"] == 401
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("case", ["expired", "wrong-signature", "garbage", "wrong-audience"])
async def test_bad_tokens_are_401(client: httpx.AsyncClient, case: str) -> None:
    settings = ServiceSettings()
    now = int(time.time())
    claims = {"sub": "x", "role": "admin", "iss": "kehu", "aud": "kehu", "exp": now + 60}
    if case == "expired":
        claims["exp"] = now - 10
        token = jwt.encode(claims, settings.signing_secret, algorithm="HS256")
    elif case == "wrong-signature":
        token = jwt.encode(claims, "not-the-secret" * 4, algorithm="HS256")
    elif case == "wrong-audience":
        token = jwt.encode({**claims, "aud": "other"}, settings.signing_secret, algorithm="HS256")
    else:
        token = "not.a.jwt"
    response = await client.get("/events", headers=auth(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert ("expired" in response.json()["detail"]) == (case == "expired")


async def test_missing_scope_is_403_naming_it(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    response = await client.get("/events", headers=auth(token("agent")))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["required_scope"] == "events:read"


async def test_explicit_scope_claim_grants_access(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    response = await client.get("/events", headers=auth(token("agent", scope="events:read")))
    assert response.status_code == 200


async def test_validation_problem_names_each_bad_field(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    response = await client.get("/events?after=x&limit=0", headers=auth(token()))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"query.after", "query.limit"}


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_rs256_tokens_verify_against_configured_public_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = ProfilesSettings(jwt_algorithm="RS256", jwt_public_key=public_pem)
    claims = {
        "sub": "svc",
        "role": "integration",
        "iss": "kehu",
        "aud": "kehu",
        "exp": int(time.time()) + 60,
    }
    good = jwt.encode(claims, key, algorithm="RS256")
    hs_forgery = jwt.encode(claims, ServiceSettings().signing_secret, algorithm="HS256")
    async for c in serve(create_app(settings)):
        assert (await c.get("/events", headers=auth(good))).status_code == 200
        assert (await c.get("/events", headers=auth(hs_forgery))).status_code == 401


async def test_event_feed_serves_committed_events_in_order(
    app: FastAPI, client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    happened = make_contract(unique_topic())
    other = make_contract(unique_topic())
    async with app.state.sessions.begin() as session:
        await Outbox(profiles_outbox, "/kehu/profiles").emit(
            session,
            *(happened(customer_id="c-9", n=n) for n in range(5)),
            other(customer_id="c-9", n=99),
        )

    async def feed(**params: Any) -> dict[str, Any]:
        response = await client.get("/events", params=params, headers=auth(token()))
        assert response.status_code == 200
        return response.json()

    async def mine_visible() -> bool:
        body = await feed(type=happened.event_type(), limit=1000)
        return len(body["items"]) == 5

    await eventually(mine_visible)
    page = await feed(type=happened.event_type(), limit=3)
    assert [e["data"]["n"] for e in page["items"]] == [0, 1, 2]
    assert all(e["specversion"] == "1.0" and e["subject"] == "c-9" for e in page["items"])
    rest = await feed(type=happened.event_type(), after=page["next_after"])
    assert [e["data"]["n"] for e in rest["items"]] == [3, 4]
    empty = await feed(type=happened.event_type(), after=rest["next_after"])
    assert empty == {"items": [], "next_after": rest["next_after"]}
    sequences = [int(e["sequence"]) for e in page["items"] + rest["items"]]
    assert sequences == sorted(sequences)


async def test_health_and_metrics_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "pass"}
    await client.get("/events")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'kehu_http_requests_total{method="GET",route="/events",service="profiles",status="401"}'
        in metrics.text
    )
    assert "kehu_outbox_backlog" in metrics.text
    openapi = (await client.get("/openapi.json")).json()
    assert "Problem" in openapi["components"]["schemas"]
    assert openapi["paths"]["/events"]["get"]["security"] == [{"HTTPBearer": []}]


async def test_readiness_follows_database_and_broker() -> None:
    db_url = make_url(ProfilesSettings().sqlalchemy_url)
    proxy = TcpProxy(db_url.host or "127.0.0.1", db_url.port or 5432)
    await proxy.start()
    broker = TansuBroker(free_port())
    broker.start()
    settings = ProfilesSettings(
        service_database_url=db_url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        ),
        kafka_bootstrap_servers=broker.bootstrap,
        outbox_poll_interval_s=0.2,
    )

    async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
        response = await client.get("/health/ready")
        return response.status_code, response.json()["checks"]

    try:
        async for client in serve(create_app(settings)):

            async def is_ready(client: httpx.AsyncClient = client) -> bool:
                return (await ready(client))[0] == 200

            await eventually(is_ready)

            await proxy.cut()
            status, checks = await ready(client)
            assert status == 503 and checks["database"]["status"] == "fail"
            await proxy.start()
            await eventually(is_ready)

            broker.stop()
            status, checks = await ready(client)
            assert status == 503 and checks["broker"]["status"] == "fail"
            assert checks["database"]["status"] == "pass"
            broker.start()
            await eventually(is_ready, timeout=45)
    finally:
        broker.stop()
        await proxy.cut()
        await asyncio.sleep(0)
