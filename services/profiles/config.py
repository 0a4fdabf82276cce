from pydantic import Field

from shared.settings import ServiceSettings


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
    # Peers asked by the cross-service GDPR export and erasure status (devstack ports).
    interactions_url: str = Field(
        "http://127.0.0.1:8002", validation_alias="PROFILES_INTERACTIONS_URL"
    )
    complaints_url: str = Field("http://127.0.0.1:8003", validation_alias="PROFILES_COMPLAINTS_URL")
    analytics_url: str = Field("http://127.0.0.1:8004", validation_alias="PROFILES_ANALYTICS_URL")
    peer_timeout_s: float = Field(5.0, validation_alias="PROFILES_PEER_TIMEOUT_S")

    def peers(self) -> dict[str, str]:
        """Services holding customer data besides profiles (subscriptions holds none)."""
        return {
            "interactions": self.interactions_url,
            "complaints": self.complaints_url,
            "analytics": self.analytics_url,
        }
