from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the analytics service, from the environment (`ANALYTICS_*` for its own)."""

    service_name: str = "analytics"
    service_database_url: str | None = Field(None, validation_alias="ANALYTICS_DATABASE_URL")
