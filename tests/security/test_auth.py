"""Every operation of every service (from its OpenAPI) refuses callers without a valid token,
and callers whose token lacks the operation's scope."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from shared.auth import ALL_SCOPES, ROLE_SCOPES
from shared.settings import ServiceSettings
from tests.security.conftest import Stack
from tests.security.stack import Operation, call, operations

PROTECTED = [op for op in operations() if not op.public]
PROBLEM = "application/problem+json"


def claims(**overrides: Any) -> dict[str, Any]:
    settings = ServiceSettings()
    now = int(time.time())
    return {
        "sub": "security-tests",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        **overrides,
    }


def signed(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), ServiceSettings().signing_secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused_callers() -> dict[str, dict[str, str]]:
    """Callers every protected operation must answer with 401."""
    now = int(time.time())
    return {
        "no token": {},
        "not a bearer token": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "garbage token": bearer("not.a.jwt"),
        "expired token": bearer(signed(role="admin", iat=now - 7200, nbf=now - 7200, exp=now - 60)),
        "wrongly signed token": bearer(
            jwt.encode(claims(role="admin"), "another-secret-" + "x" * 40, algorithm="HS256")
        ),
        "unsigned (alg none) token": bearer(jwt.encode(claims(role="admin"), "", algorithm="none")),
        "token for another audience": bearer(signed(role="admin", aud="someone-else")),
        "token from another issuer": bearer(signed(role="admin", iss="evil")),
        "token without expiry": bearer(
            jwt.encode(
                {k: v for k, v in claims(role="admin").items() if k != "exp"},
                ServiceSettings().signing_secret,
                algorithm="HS256",
            )
        ),
    }


def is_problem(response: httpx.Response, status: int) -> bool:
    return (
        response.status_code == status
        and response.headers.get("content-type", "").startswith(PROBLEM)
        and response.json().get("status") == status
        # RFC 6750: a 401 tells the client which scheme to authenticate with.
        and (status != 401 or response.headers.get("www-authenticate", "").startswith("Bearer"))
    )


@pytest.mark.parametrize("op", PROTECTED, ids=lambda op: op.id)
async def test_operation_refuses_missing_expired_and_forged_tokens(
    stack: Stack, op: Operation
) -> None:
    failures = []
    for caller, hdrs in refused_callers().items():
        response = await call(stack.clients[op.service], op, hdrs)
        if not is_problem(response, 401):
            failures.append(f"{caller}: {response.status_code} {response.text[:200]}")
    assert not failures, f"{op.id} did not answer 401 problem+json:\n" + "\n".join(failures)


async def required_scopes(stack: Stack, op: Operation) -> list[str]:
    """Every scope the operation checks, in order: each 403 names the next one missing."""
    held = {"nothing:read"}
    found: list[str] = []
    while True:
        response = await call(stack.clients[op.service], op, bearer(signed(scope=" ".join(held))))
        if not found:
            assert is_problem(response, 403), (
                f"{op.id} answered {response.status_code} to a token without scopes: "
                f"{response.text[:300]}"
            )
        if response.status_code != 403:
            return found
        scope = response.json().get("required_scope")
        assert scope in ALL_SCOPES, f"{op.id}: 403 names no known required_scope: {response.text}"
        assert scope not in held, f"{op.id} refuses {scope} although the token holds it"
        found.append(scope)
        held.add(scope)
        # Holding every scope runs the operation: not the maintenance jobs.
        if op.path.startswith("/admin/") and op.method != "get":
            return found


@pytest.mark.parametrize("op", PROTECTED, ids=lambda op: op.id)
async def test_operation_refuses_under_scoped_tokens(stack: Stack, op: Operation) -> None:
    scopes = await required_scopes(stack, op)
    lacking = {
        f"role {role}": bearer(signed(role=role))
        for role, granted in ROLE_SCOPES.items()
        if not set(scopes) <= granted
    }
    # Every scope but one needed one, so only that one can be what refuses the call.
    for scope in scopes:
        lacking[f"every scope but {scope}"] = bearer(
            signed(scope=" ".join(sorted(ALL_SCOPES - {scope})))
        )
    failures = []
    for caller, hdrs in lacking.items():
        response = await call(stack.clients[op.service], op, hdrs)
        named = response.json().get("required_scope") if response.content else None
        expected = scopes if caller.startswith("role") else [caller.rsplit(" ", 1)[1]]
        if not is_problem(response, 403) or named not in expected:
            failures.append(f"{caller}: {response.status_code} {response.text[:200]}")
    assert not failures, f"{op.id} (needs {scopes}) let under-scoped callers by:\n" + "\n".join(
        failures
    )


@pytest.mark.parametrize("op", PROTECTED, ids=lambda op: op.id)
async def test_operation_documents_the_scopes_it_needs(stack: Stack, op: Operation) -> None:
    scopes = await required_scopes(stack, op)
    text = f"{op.spec.get('summary', '')} {op.spec.get('description', '')}"
    undocumented = [s for s in scopes if s not in text]
    assert not undocumented, f"{op.id} needs {undocumented} but its OpenAPI text does not say so"
    assert "401" in op.spec["responses"] and "403" in op.spec["responses"], (
        f"{op.id} does not document 401/403 responses"
    )
