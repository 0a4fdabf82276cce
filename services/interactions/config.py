from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the interactions service, from the environment (`INTERACTIONS_*` for its own)."""

    service_name: str = "interactions"
    service_database_url: str | None = Field(None, validation_alias="INTERACTIONS_DATABASE_URL")
