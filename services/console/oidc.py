"""Sign-in through an external OpenID Connect provider: the authorisation-code flow with PKCE,
by Authlib's Starlette client (state and nonce kept in the signed session)."""

from __future__ import annotations

import time
from typing import Any

import jwt
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from services.console.config import Settings
from services.console.session import User

PROVIDER = "kehu_sso"


def client(settings: Settings) -> StarletteOAuth2App | None:
    """The registered OIDC client, or None when no provider is configured."""
    if not settings.oidc_enabled:
        return None
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=str(settings.oidc_issuer).rstrip("/")
        + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
    )
    app: StarletteOAuth2App = getattr(oauth, PROVIDER)
    return app


def user_of(settings: Settings, token: dict[str, Any]) -> User:
    """The console user from the provider's token answer.

    The bearer for the APIs is the token named by `CONSOLE_OIDC_API_TOKEN`; the role and
    scopes are read from its claims when it is a JWT (the APIs verify its signature on every
    call; here they only decide which pages to offer), else from the ID token's claims.
    """
    userinfo: dict[str, Any] = dict(token.get("userinfo") or {})
    bearer = str(token.get(settings.oidc_api_token) or "")
    claims = dict(userinfo)
    try:
        claims.update(jwt.decode(bearer, options={"verify_signature": False}))
    except jwt.PyJWTError:
        pass  # an opaque access token: the ID token's claims decide the pages
    raw_scope = claims.get("scope") or claims.get("scp") or ""
    scope = raw_scope if isinstance(raw_scope, str) else " ".join(map(str, raw_scope))
    expires = token.get("expires_at") or claims.get("exp") or time.time() + 3600
    return User(
        subject=str(claims.get("sub") or userinfo.get("sub") or ""),
        name=str(userinfo.get("name") or userinfo.get("preferred_username") or userinfo.get("sub")),
        role=str(claims["role"]) if claims.get("role") else None,
        scope=scope,
        token=bearer,
        expires_at=float(min(float(expires), time.time() + settings.session_max_age_s)),
        provider="oidc",
    )
