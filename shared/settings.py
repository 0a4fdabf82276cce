"""Typed settings shared by every service; each service extends `ServiceSettings`."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

Environment = Literal["dev", "test", "production"]

# Placeholders that must never sign production tokens.
INSECURE_SECRETS = {"", "changeme", "secret", "dev", "kehu-dev-secret"}


def create_once(path: Path, make: Callable[[], str]) -> str:
    """The content of `path`, which the first of any number of concurrent callers creates.

    The content is written whole to a temporary file beside `path` and hard-linked into place:
    the link fails if the name exists, so every process (of every service and every worker
    starting at once) reads the one value that won, and nobody reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(make())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won; its value is the one
        finally:
            os.unlink(tmp)
    return path.read_text()


def dev_secret(state_dir: Path) -> str:
    """The generated local signing secret, created once and kept in the git-ignored state dir."""
    return create_once(state_dir / "dev-jwt-secret", lambda: secrets.token_urlsafe(48)).strip()


class ServiceSettings(BaseSettings):
    """Settings every service has. Read from the environment only (12-factor)."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True, populate_by_name=True)

    service_name: str = "kehu"
    env: Environment = Field("dev", validation_alias="KEHU_ENV")
    state_dir: Path = Field(Path(".kehu"), validation_alias="KEHU_STATE_DIR")

    # A server URL (any database name); each service uses its own database `kehu_<service>`
    # on it unless `<SERVICE>_DATABASE_URL` names one explicitly.
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:55432/postgres", validation_alias="DATABASE_URL"
    )
    service_database_url: str | None = None
    # A fixed pool: connections beyond it would be opened and closed per request under load
    # (connection churn costs more than waiting for a pooled one).
    db_pool_size: int = Field(16, ge=1, validation_alias="KEHU_DB_POOL_SIZE")
    db_pool_overflow: int = Field(0, ge=0, validation_alias="KEHU_DB_POOL_OVERFLOW")
    # Pinging on every checkout costs a round trip per request; without it a restarted server
    # fails one request per replica (a 503), after which the pool discards every old connection.
    db_pool_pre_ping: bool = Field(False, validation_alias="KEHU_DB_POOL_PRE_PING")
    db_statement_timeout_ms: int = 15_000
    # Each shutdown step (background jobs, consumers, relay, pool) gets at most this long.
    shutdown_step_timeout_s: float = 10.0

    # The one currency money is reported in: interactions converts every purchase and refund
    # into it when recorded; analytics adds only amounts in it.
    reporting_currency: str = Field(
        "CNY", pattern=r"^[A-Z]{3}$", validation_alias="KEHU_REPORTING_CURRENCY"
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:59092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    kafka_topic_partitions: int = Field(3, validation_alias="KEHU_TOPIC_PARTITIONS")
    kafka_replication_factor: int = Field(1, validation_alias="KEHU_TOPIC_REPLICATION")
    kafka_session_timeout_ms: int = Field(10_000, validation_alias="KEHU_KAFKA_SESSION_TIMEOUT_MS")
    # Tansu answers a fetch after about fetch_max_wait/4; keep it low for snappy pipelines.
    kafka_fetch_max_wait_ms: int = Field(100, validation_alias="KEHU_KAFKA_FETCH_MAX_WAIT_MS")

    # What this process runs (see shared.serve): `all` serves requests and runs the relay,
    # consumers and schedulers; `api` only serves requests; `worker` runs the background work
    # (its HTTP server answers health and metrics). `KEHU_RUN_DIR` is where a service's API
    # processes find its worker (its wake and health sockets), when they run split.
    role: Literal["all", "api", "worker"] = Field("all", validation_alias="KEHU_ROLE")
    run_dir: Path | None = Field(None, validation_alias="KEHU_RUN_DIR")

    outbox_batch_size: int = 500
    outbox_poll_interval_s: float = 1.0
    # After a wake-up the relay waits this long, so one pass takes the events of the commits
    # that follow (under load: a pass per ~50 ms, not one per request).
    outbox_debounce_s: float = 0.05
    outbox_retention_days: int = 365

    consumer_batch_size: int = 500
    # How long a consumer keeps taking records after the first ones of a batch arrive: steady
    # traffic then comes in fewer, larger batches (one transaction, inbox insert and offset
    # commit each), for at most this much more delay per hop. 0: take what has arrived.
    consumer_linger_ms: int = Field(100, ge=0, le=5000, validation_alias="KEHU_CONSUMER_LINGER_MS")
    consumer_max_retries: int = 3
    consumer_stall_after_s: float = 60.0

    # Abuse limits (per replica); 0 disables rate limiting.
    rate_limit_per_s: float = Field(50.0, validation_alias="KEHU_RATE_LIMIT_PER_S")
    rate_limit_burst: int = Field(200, validation_alias="KEHU_RATE_LIMIT_BURST")
    max_body_bytes: int = Field(1_048_576, validation_alias="KEHU_MAX_BODY_BYTES")
    # Bulk endpoints that legitimately take large bodies: path prefix -> bytes.
    body_limit_overrides: dict[str, int] = {"/customers/import": 64 * 1_048_576}

    jwt_secret: str | None = Field(None, validation_alias="KEHU_JWT_SECRET")
    jwt_algorithm: Literal["HS256", "RS256"] = Field("HS256", validation_alias="KEHU_JWT_ALGORITHM")
    jwt_jwks_url: str | None = Field(None, validation_alias="KEHU_JWT_JWKS_URL")
    jwt_public_key: str | None = Field(None, validation_alias="KEHU_JWT_PUBLIC_KEY")
    jwt_issuer: str = Field("kehu", validation_alias="KEHU_JWT_ISSUER")
    jwt_audience: str = Field("kehu", validation_alias="KEHU_JWT_AUDIENCE")

    @property
    def database_name(self) -> str:
        return f"kehu_{self.service_name}"

    @property
    def sqlalchemy_url(self) -> str:
        """The service's own database as an asyncpg SQLAlchemy URL."""
        url = make_url(self.service_database_url or self.database_url)
        if not self.service_database_url:
            url = url.set(database=self.database_name)
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)

    @property
    def signing_secret(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret
        return dev_secret(self.state_dir)

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> ServiceSettings:
        if self.env == "production" and self.jwt_algorithm == "HS256":
            if self.jwt_secret is None or self.jwt_secret in INSECURE_SECRETS:
                raise ValueError("KEHU_JWT_SECRET must be set to a strong secret in production")
            if len(self.jwt_secret) < 32:
                raise ValueError("KEHU_JWT_SECRET must be at least 32 characters in production")
        if self.jwt_algorithm == "RS256" and not (self.jwt_jwks_url or self.jwt_public_key):
            raise ValueError("RS256 needs KEHU_JWT_JWKS_URL or KEHU_JWT_PUBLIC_KEY")
        return self
