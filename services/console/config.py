"""Settings of the console, from the environment (`CONSOLE_*` for its own)."""

from __future__ import annotations

import secrets

from pydantic import Field, model_validator

# Where `make dev` serves each API (KEHU_PORT_OFFSET shifts them all).
from shared.devstack import SERVICES as DEV_PORTS
from shared.settings import INSECURE_SECRETS, ServiceSettings


def _dev_url(name: str, port: int | None = None) -> str:
    return f"http://127.0.0.1:{DEV_PORTS.get(name, port or 0)}"


class Settings(ServiceSettings):
    """The console reads the other services' public APIs with the signed-in user's token; it
    has no database, only signed session cookies."""

    service_name: str = "console"

    profiles_url: str = Field(
        default_factory=lambda: _dev_url("profiles"), validation_alias="CONSOLE_PROFILES_URL"
    )
    interactions_url: str = Field(
        default_factory=lambda: _dev_url("interactions"),
        validation_alias="CONSOLE_INTERACTIONS_URL",
    )
    complaints_url: str = Field(
        default_factory=lambda: _dev_url("complaints"), validation_alias="CONSOLE_COMPLAINTS_URL"
    )
    analytics_url: str = Field(
        default_factory=lambda: _dev_url("analytics"), validation_alias="CONSOLE_ANALYTICS_URL"
    )
    loyalty_url: str = Field(
        default_factory=lambda: _dev_url("loyalty", 8006), validation_alias="CONSOLE_LOYALTY_URL"
    )
    # Each upstream call gives up after this long; the panel then says "not available".
    upstream_timeout_s: float = Field(5.0, gt=0, validation_alias="CONSOLE_UPSTREAM_TIMEOUT_S")

    # Signs the session cookie (itsdangerous). Dev and test generate one in the state dir.
    session_secret: str | None = Field(None, validation_alias="CONSOLE_SESSION_SECRET")
    session_max_age_s: int = Field(12 * 3600, ge=60, validation_alias="CONSOLE_SESSION_MAX_AGE_S")
    # Send the cookie over HTTPS only (on by default in production, behind TLS).
    cookie_secure: bool | None = Field(None, validation_alias="CONSOLE_COOKIE_SECURE")

    # The dev identity provider: sign in as a dev user of each role with a token signed by
    # `shared.auth.issue_token`. Off in production.
    dev_login: bool | None = Field(None, validation_alias="CONSOLE_DEV_LOGIN")

    # An external OpenID Connect provider (authorisation-code flow) when the issuer is set.
    oidc_issuer: str | None = Field(None, validation_alias="CONSOLE_OIDC_ISSUER")
    oidc_client_id: str | None = Field(None, validation_alias="CONSOLE_OIDC_CLIENT_ID")
    oidc_client_secret: str | None = Field(None, validation_alias="CONSOLE_OIDC_CLIENT_SECRET")
    oidc_scopes: str = Field("openid profile email", validation_alias="CONSOLE_OIDC_SCOPES")
    # Which token of the provider's answer the APIs accept as the bearer: its access token
    # (a JWT at most providers) or the ID token (when the APIs trust the provider's JWKS with
    # the client id as audience).
    oidc_api_token: str = Field(
        "access_token",
        pattern="^(access_token|id_token)$",
        validation_alias="CONSOLE_OIDC_API_TOKEN",
    )
    oidc_provider_name: str = Field("SSO", validation_alias="CONSOLE_OIDC_PROVIDER_NAME")
    # The console's public URL, for the OIDC redirect; default: as the browser reached it.
    public_url: str | None = Field(None, validation_alias="CONSOLE_PUBLIC_URL")

    # "Today" for the agenda and how times are shown.
    timezone: str = Field("Asia/Shanghai", validation_alias="CONSOLE_TIMEZONE")
    churn_top_n: int = Field(10, ge=1, le=100, validation_alias="CONSOLE_CHURN_TOP_N")

    @property
    def dev_login_enabled(self) -> bool:
        return self.dev_login if self.dev_login is not None else self.env != "production"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.env == "production"

    @property
    def session_signing_secret(self) -> str:
        if self.session_secret:
            return self.session_secret
        # Dev and test: generated once, kept in the git-ignored state dir.
        path = self.state_dir / "console-session-secret"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    @model_validator(mode="after")
    def _refuse_insecure_console(self) -> Settings:
        if self.env == "production":
            secret = self.session_secret or ""
            if secret in INSECURE_SECRETS or len(secret) < 32:
                raise ValueError("CONSOLE_SESSION_SECRET must be a strong secret in production")
            if self.dev_login:
                raise ValueError("CONSOLE_DEV_LOGIN cannot be on in production")
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("CONSOLE_OIDC_ISSUER needs CONSOLE_OIDC_CLIENT_ID")
        return self
