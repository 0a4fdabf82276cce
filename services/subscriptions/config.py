import ipaddress

from pydantic import Field, field_validator

from shared.settings import ServiceSettings

# Retries after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 20 h
# (about three days in all; each delay gets +-jitter so retries of many deliveries spread out).
DEFAULT_RETRY_SCHEDULE_S: list[float] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000]


class Settings(ServiceSettings):
    """Settings of the subscriptions service, from the environment (`SUBSCRIPTIONS_*`)."""

    service_name: str = "subscriptions"
    service_database_url: str | None = Field(None, validation_alias="SUBSCRIPTIONS_DATABASE_URL")

    # Networks (CIDR) a webhook may target although they are private, loopback or link-local,
    # e.g. '["10.0.0.0/8"]' for receivers inside your own network. Plain http is allowed only
    # to these; everything else must be https to a public address.
    webhook_allowed_networks: list[str] = Field(
        default_factory=list, validation_alias="SUBSCRIPTIONS_WEBHOOK_ALLOWED_NETWORKS"
    )
    webhook_timeout_s: float = Field(10.0, validation_alias="SUBSCRIPTIONS_WEBHOOK_TIMEOUT_S")
    webhook_connect_timeout_s: float = Field(
        5.0, validation_alias="SUBSCRIPTIONS_WEBHOOK_CONNECT_TIMEOUT_S"
    )
    webhook_max_payload_bytes: int = Field(
        256 * 1024, validation_alias="SUBSCRIPTIONS_WEBHOOK_MAX_PAYLOAD_BYTES"
    )
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE_S),
        validation_alias="SUBSCRIPTIONS_WEBHOOK_RETRY_SCHEDULE_S",
    )
    webhook_retry_jitter: float = Field(
        0.2, ge=0, le=0.9, validation_alias="SUBSCRIPTIONS_WEBHOOK_RETRY_JITTER"
    )
    # An endpoint whose every delivery failed for this long is disabled (with an event).
    webhook_disable_after_s: float = Field(
        5 * 24 * 3600, validation_alias="SUBSCRIPTIONS_WEBHOOK_DISABLE_AFTER_S"
    )
    webhook_secret_grace_s: int = Field(
        24 * 3600, validation_alias="SUBSCRIPTIONS_WEBHOOK_SECRET_GRACE_S"
    )

    delivery_batch_size: int = Field(50, validation_alias="SUBSCRIPTIONS_DELIVERY_BATCH_SIZE")
    delivery_concurrency: int = Field(16, validation_alias="SUBSCRIPTIONS_DELIVERY_CONCURRENCY")
    delivery_poll_interval_s: float = Field(
        0.5, validation_alias="SUBSCRIPTIONS_DELIVERY_POLL_INTERVAL_S"
    )
    # A claimed delivery is invisible to other workers this long; must exceed the timeout.
    delivery_lease_s: float = Field(60.0, validation_alias="SUBSCRIPTIONS_DELIVERY_LEASE_S")
    # Finished deliveries and their attempt log are kept this long (replay needs them).
    delivery_retention_days: int = Field(
        30, ge=1, validation_alias="SUBSCRIPTIONS_DELIVERY_RETENTION_DAYS"
    )
    delivery_prune_interval_s: float = Field(
        3600, validation_alias="SUBSCRIPTIONS_DELIVERY_PRUNE_INTERVAL_S"
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _valid_schedule(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays must be >= 0 seconds")
        return value
