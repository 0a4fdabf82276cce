from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the profiles service, from the environment (`PROFILES_*` for its own)."""

    service_name: str = "profiles"
    service_database_url: str | None = Field(None, validation_alias="PROFILES_DATABASE_URL")
