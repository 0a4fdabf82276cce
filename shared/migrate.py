"""Create each service's database if missing and bring it to the newest migration.

python -m shared.migrate [service ...]
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from shared.settings import ServiceSettings

SERVICES = (
    "profiles",
    "interactions",
    "complaints",
    "analytics",
    "subscriptions",
    "loyalty",
    "outreach",
)
ROOT = Path(__file__).resolve().parent.parent


def service_settings(name: str) -> ServiceSettings:
    return importlib.import_module(f"services.{name}.config").Settings()


async def ensure_database(sqlalchemy_url: str) -> None:
    url = make_url(sqlalchemy_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        await conn.close()


def alembic_config(name: str, sqlalchemy_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "services" / name / "migrations"))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(name: str, revision: str = "head") -> None:
    url = service_settings(name).sqlalchemy_url
    asyncio.run(ensure_database(url))
    command.upgrade(alembic_config(name, url), revision)


def main() -> None:
    for name in sys.argv[1:] or SERVICES:
        upgrade(name)
        print(f"[kehu] {name}: database migrated", file=sys.stderr)


if __name__ == "__main__":
    main()
