"""Sign-in through a real local OpenID Connect provider (oidc-provider-mock, a Flask server on a
thread): the authorisation-code flow end to end, and the provider's token accepted by an API
that trusts the provider's keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread

from services.console.config import Settings as ConsoleSettings
from services.console.main import create_app as console_app
from tests.console.stack import admin_headers, http_server
from tests.security.stack import make_app, settings

CLIENT_ID = "kehu-console"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    users = [User(sub="oidc-manager-7", claims={"role": "manager", "name": "Chen Jing"})]
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


async def test_a_user_signs_in_through_the_oidc_provider_and_the_apis_accept_the_token(
    provider: str,
) -> None:
    # Profiles trusts the provider: RS256 against its JWKS, its issuer, the console as audience.
    profiles_settings = settings(
        "profiles",
        jwt_algorithm="RS256",
        jwt_jwks_url=f"{provider}/jwks",
        jwt_issuer=provider,
        jwt_audience=CLIENT_ID,
    )
    customer_name = f"OIDC Trading {uuid.uuid4().hex[:8]}"
    async with http_server(make_app("profiles")) as dev_profiles:
        # The customer is written with a dev token; the OIDC user reads it below.
        async with httpx.AsyncClient(base_url=dev_profiles, headers=admin_headers()) as admin:
            created = await admin.post(
                "/customers",
                json={"kind": "organisation", "display_name": customer_name},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert created.status_code == 201, created.text
    async with http_server(make_app("profiles", profiles_settings)) as profiles:
        console_settings = ConsoleSettings(
            CONSOLE_PROFILES_URL=profiles,
            CONSOLE_OIDC_ISSUER=provider,
            CONSOLE_OIDC_CLIENT_ID=CLIENT_ID,
            CONSOLE_OIDC_CLIENT_SECRET="local-test-secret",
            CONSOLE_OIDC_API_TOKEN="id_token",
            CONSOLE_OIDC_PROVIDER_NAME="Company SSO",
        )
        async with (
            http_server(console_app(console_settings)) as console,
            httpx.AsyncClient(base_url=console) as browser,
        ):
            login = await browser.get("/login")
            assert "Company SSO" in login.text

            # 1. The console sends the browser to the provider (code flow, PKCE, state).
            start = await browser.get("/login/oidc")
            assert start.status_code == 302
            authorize = start.headers["location"]
            assert authorize.startswith(f"{provider}/oauth2/authorize?")
            for parameter in (
                "response_type=code",
                f"client_id={CLIENT_ID}",
                "state=",
                "code_challenge=",
                "code_challenge_method=S256",
                "nonce=",
            ):
                assert parameter in authorize, parameter

            # 2. The user authenticates at the provider, which redirects back with a code.
            async with httpx.AsyncClient() as at_provider:
                answer = await at_provider.post(authorize, data={"sub": "oidc-manager-7"})
            assert answer.status_code == 302, answer.text
            callback = answer.headers["location"]
            assert callback.startswith(f"{console}/auth/callback?code=")

            # 3. The console exchanges the code, verifies the ID token and starts a session.
            done = await browser.get(callback.removeprefix(console))
            assert done.status_code == 303
            assert done.headers["location"] == "/dashboard"  # a manager's home
            page = await browser.get("/customers", params={"q": customer_name})
            assert page.status_code == 200, (page.headers, page.text[:500])
            assert "Chen Jing" in page.text
            assert 'data-state="' not in page.text, page.text  # profiles answered
            assert customer_name in page.text

            # A replayed callback (the state is used up) signs nobody in.
            async with httpx.AsyncClient(base_url=console) as other:
                replay = await other.get(callback.removeprefix(console))
                assert replay.status_code == 303 and replay.headers["location"] == "/login"
                assert (await other.get("/dashboard")).headers["location"].startswith("/login")
