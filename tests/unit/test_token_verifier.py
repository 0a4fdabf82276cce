"""Bearer tokens: the verifier's cache never outlives a token's `exp`."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.auth import TokenVerifier, issue_token, scopes_for
from shared.problems import Unauthorized
from shared.settings import ServiceSettings


async def test_a_cached_token_still_expires_at_its_exp() -> None:
    settings = ServiceSettings()
    verifier = TokenVerifier(settings)
    token = issue_token(settings, "analyst", subject="short-lived", ttl_s=2)
    assert verifier.verify(token).subject == "short-lived"
    assert verifier.verify(token).subject == "short-lived"  # from the cache
    await asyncio.sleep(2.1)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_forged_foreign_and_premature_tokens_are_refused() -> None:
    settings = ServiceSettings(jwt_secret="s" * 40)
    verifier = TokenVerifier(settings)
    forged = issue_token(ServiceSettings(jwt_secret="f" * 40), "admin")
    foreign = issue_token(settings, "admin", aud="another-system")
    premature = issue_token(settings, "admin", nbf=int(time.time()) + 600)
    for token, reason in ((forged, "Signature"), (foreign, "Audience"), (premature, "yet")):
        with pytest.raises(Unauthorized, match=reason):
            verifier.verify(token)


def test_explicit_scopes_add_to_the_role() -> None:
    granted = scopes_for({"role": "no-such-role", "scope": "events:read pii:read"})
    assert granted == {"events:read", "pii:read"}
    assert scopes_for({"scp": ["customers:read"]}) == {"customers:read"}
    assert scopes_for({}) == frozenset()
