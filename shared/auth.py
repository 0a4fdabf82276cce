"""Bearer-JWT authentication and scope-based authorisation.

Roles map to scopes; a token carries a role (`role` claim) and/or explicit `scope`s. HS256 with
a shared secret (generated locally in dev), or RS256 verified against a JWKS URL or a PEM key.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.problems import Forbidden, Unauthorized
from shared.settings import ServiceSettings

READ_WRITE = ("read", "write")
RESOURCES = (
    "customers",
    "interactions",
    "followups",
    "purchases",
    "surveys",
    "complaints",
    "analytics",
    "loyalty",
    "events",
    "subscriptions",
    "outreach",
    "audit",
    "admin",
)
# Acts with consequences no agent should take alone: erasing or merging a customer, staffing,
# setting the loyalty programme's levels and rewards, configuring the service desk (SLA
# policies, holidays, teams, routing, canned responses), overriding a rule for one case (a
# claim outside its return window).
PRIVILEGED_SCOPES = frozenset(
    {
        "customers:erase",
        "customers:merge",
        "agents:write",
        "loyalty:manage",
        "desk:configure",
        "cases:override",
    }
)
ALL_SCOPES = (
    frozenset(f"{r}:{a}" for r in RESOURCES for a in READ_WRITE) | {"pii:read"} | PRIVILEGED_SCOPES
)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": ALL_SCOPES,
    "manager": ALL_SCOPES - {"admin:write", "admin:read", "subscriptions:write"},
    "agent": frozenset(
        {
            "customers:read",
            "customers:write",
            "interactions:read",
            "interactions:write",
            "followups:read",
            "followups:write",
            "purchases:read",
            "purchases:write",
            "surveys:read",
            "surveys:write",
            "complaints:read",
            "complaints:write",
            "analytics:read",
            "loyalty:read",
            "loyalty:write",
            "pii:read",
        }
    ),
    # Analysts see everything, masked: no `pii:read`, no writes.
    "analyst": frozenset(
        {f"{r}:read" for r in RESOURCES if r not in ("admin", "audit", "subscriptions")}
    ),
    # Other systems: read and write the domain, read the event feeds; no PII unless granted.
    "integration": frozenset(
        {
            "customers:read",
            "customers:write",
            "interactions:read",
            "interactions:write",
            "purchases:read",
            "purchases:write",
            "surveys:read",
            "surveys:write",
            "complaints:read",
            "complaints:write",
            "events:read",
            "analytics:read",
            "loyalty:read",
            "loyalty:write",
            "subscriptions:read",
            "subscriptions:write",
        }
    ),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling, with the scopes their token grants."""

    subject: str
    role: str | None
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def scopes_for(claims: dict[str, Any]) -> frozenset[str]:
    scopes: set[str] = set(ROLE_SCOPES.get(str(claims.get("role")), frozenset()))
    raw = claims.get("scope") or claims.get("scp") or ""
    scopes.update(raw.split() if isinstance(raw, str) else raw)
    return frozenset(scopes)


def issue_token(
    settings: ServiceSettings,
    role: str,
    subject: str = "dev-user",
    ttl_s: int = 12 * 3600,
    **claims: Any,
) -> str:
    """A signed HS256 token for `role` (dev tooling and tests)."""
    if role not in ROLE_SCOPES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLE_SCOPES)}")
    now = int(time.time())
    payload = {
        "sub": subject,
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, settings.signing_secret, algorithm="HS256")


class TokenVerifier:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        self._key: str | None = (
            settings.jwt_public_key
            if settings.jwt_algorithm == "RS256"
            else settings.signing_secret
        )
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()

    CACHE_SIZE = 4096

    def verify(self, token: str) -> Principal:
        """The token's principal; a token verified before is served from a small LRU cache
        until its own `exp` (a signature check per request costs more than the request's SQL)."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            principal, not_before, expires = cached
            if not_before <= now < expires:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, claims = self._decode(token)
        self._verified[token] = (principal, float(claims.get("nbf", 0)), float(claims["exp"]))
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    @staticmethod
    def _jwks_key(jwks: jwt.PyJWKClient, token: str) -> Any:
        """The provider's key for the token's `kid`; a token without one (`kid` is optional,
        RFC 7515) is checked against the provider's signing key when it has exactly one."""
        if jwt.get_unverified_header(token).get("kid") is None:
            keys = jwks.get_signing_keys()
            if len(keys) == 1:
                return keys[0].key
        return jwks.get_signing_key_from_jwt(token).key

    def _decode(self, token: str) -> tuple[Principal, dict[str, Any]]:
        try:
            key: Any = self._key
            if self._jwks is not None:
                key = self._jwks_key(self._jwks, token)
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.settings.jwt_algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The bearer token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The bearer token is invalid: {exc}") from exc
        return Principal(str(claims["sub"]), claims.get("role"), scopes_for(claims)), claims


BEARER_DESCRIPTION = "A JWT from your identity provider"
_bearer = HTTPBearer(auto_error=False, description=BEARER_DESCRIPTION)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller of `request`, from its bearer token (401 without a valid one)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer token is required (Authorization: Bearer <jwt>)")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


async def current_principal(request: Request, credentials: Bearer) -> Principal:
    return authenticate(request, credentials)


def require(scope: str) -> Any:
    """Dependency: the caller must hold `scope`."""

    async def _check(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope", required_scope=scope)
        return principal

    return Depends(_check)


def main() -> None:
    """`python -m shared.auth ROLE`: print a dev bearer token for ROLE."""
    import sys

    role = sys.argv[1] if len(sys.argv) > 1 else "admin"
    print(issue_token(ServiceSettings(), role))


if __name__ == "__main__":
    main()
