"""Settings refuse what must not run: default secrets in production, RS256 without a key."""

from __future__ import annotations

import pytest

from shared.settings import ServiceSettings


def test_default_secret_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match="KEHU_JWT_SECRET"):
        ServiceSettings(env="production", jwt_secret=None)
    with pytest.raises(ValueError, match="KEHU_JWT_SECRET"):
        ServiceSettings(env="production", jwt_secret="changeme")
    assert ServiceSettings(env="production", jwt_secret="s" * 40).signing_secret == "s" * 40


def test_rs256_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="RS256"):
        ServiceSettings(jwt_algorithm="RS256")


def test_a_production_secret_needs_32_characters() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        ServiceSettings(env="production", jwt_secret="s" * 31)


def test_each_service_uses_its_own_database_on_the_server_unless_one_is_named() -> None:
    server = "postgresql://kehu:pw@db.internal:5432/postgres"
    profiles = ServiceSettings(database_url=server, service_name="profiles")
    assert profiles.sqlalchemy_url == "postgresql+asyncpg://kehu:pw@db.internal:5432/kehu_profiles"
    named = ServiceSettings(
        database_url=server, service_database_url="postgresql://other:5433/crm_profiles"
    )
    assert named.sqlalchemy_url == "postgresql+asyncpg://other:5433/crm_profiles"
