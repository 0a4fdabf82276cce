from pydantic import Field, field_validator

from shared.settings import ServiceSettings

# Every service besides profiles that holds per-customer data, asked by the GDPR export and
# erasure report unless `PROFILES_GDPR_PEERS` names fewer.
GDPR_PEERS = ("interactions", "complaints", "analytics", "subscriptions", "loyalty", "outreach")


class Settings(ServiceSettings):
    """Settings of the profiles service, from the environment (`PROFILES_*` for its own)."""

    service_name: str = "profiles"
    service_database_url: str | None = Field(None, validation_alias="PROFILES_DATABASE_URL")
    import_max_rows: int = Field(10_000, validation_alias="PROFILES_IMPORT_MAX_ROWS")
    import_batch_size: int = Field(1_000, validation_alias="PROFILES_IMPORT_BATCH_SIZE")
    # Role `agent` sees and changes only customers it owns (`owner_id` == token subject).
    agents_own_customers_only: bool = Field(
        False, validation_alias="PROFILES_AGENTS_OWN_CUSTOMERS_ONLY"
    )
    # Peers asked by the cross-service GDPR export and erasure report (devstack ports).
    interactions_url: str = Field(
        "http://127.0.0.1:8002", validation_alias="PROFILES_INTERACTIONS_URL"
    )
    complaints_url: str = Field("http://127.0.0.1:8003", validation_alias="PROFILES_COMPLAINTS_URL")
    analytics_url: str = Field("http://127.0.0.1:8004", validation_alias="PROFILES_ANALYTICS_URL")
    subscriptions_url: str = Field(
        "http://127.0.0.1:8005", validation_alias="PROFILES_SUBSCRIPTIONS_URL"
    )
    loyalty_url: str = Field("http://127.0.0.1:8006", validation_alias="PROFILES_LOYALTY_URL")
    outreach_url: str = Field("http://127.0.0.1:8007", validation_alias="PROFILES_OUTREACH_URL")
    # Comma-separated names of the peers to ask (each needs its `PROFILES_<NAME>_URL`).
    gdpr_peers: str = Field(",".join(GDPR_PEERS), validation_alias="PROFILES_GDPR_PEERS")
    peer_timeout_s: float = Field(5.0, validation_alias="PROFILES_PEER_TIMEOUT_S")

    @field_validator("gdpr_peers")
    @classmethod
    def _known_peers(cls, value: str) -> str:
        unknown = [n for n in _names(value) if n not in GDPR_PEERS]
        if unknown:
            raise ValueError(f"unknown GDPR peers {unknown}; known: {', '.join(GDPR_PEERS)}")
        return value

    def peers(self) -> dict[str, str]:
        """The services asked for their part of a customer's GDPR export and erasure: name→URL."""
        return {name: getattr(self, f"{name}_url") for name in _names(self.gdpr_peers)}


def _names(value: str) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
