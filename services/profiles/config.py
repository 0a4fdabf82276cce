from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the profiles service, from the environment (`PROFILES_*` for its own)."""

    service_name: str = "profiles"
    service_database_url: str | None = Field(None, validation_alias="PROFILES_DATABASE_URL")
    import_max_rows: int = Field(10_000, validation_alias="PROFILES_IMPORT_MAX_ROWS")
    import_batch_size: int = Field(1_000, validation_alias="PROFILES_IMPORT_BATCH_SIZE")
