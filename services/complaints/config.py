from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the complaints service, from the environment (`COMPLAINTS_*` for its own)."""

    service_name: str = "complaints"
    service_database_url: str | None = Field(None, validation_alias="COMPLAINTS_DATABASE_URL")
