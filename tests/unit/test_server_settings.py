"""The embedded PostgreSQL's settings: sized from the machine, and the same in compose."""

from __future__ import annotations

import yaml

from shared.devstack import ROOT, WRITE_LOAD_SETTINGS, server_settings

GIB = 2**30


def test_shared_buffers_are_an_eighth_of_memory_between_128mb_and_2gb() -> None:
    assert server_settings(8 * GIB)["shared_buffers"] == "1024MB"
    assert server_settings(512 * 2**20)["shared_buffers"] == "128MB"
    assert server_settings(64 * GIB)["shared_buffers"] == "2048MB"


def test_every_write_load_setting_is_passed_to_the_server() -> None:
    settings = server_settings(8 * GIB)
    assert {k: settings[k] for k in WRITE_LOAD_SETTINGS} == WRITE_LOAD_SETTINGS


def test_compose_runs_postgres_with_the_same_write_load_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    words = compose["services"]["postgres"]["command"].split()
    assert words[0] == "postgres"
    given = dict(w.split("=", 1) for w in words[2::2])
    assert words[1::2] == ["-c"] * len(given)
    assert {k: given[k] for k in WRITE_LOAD_SETTINGS} == WRITE_LOAD_SETTINGS
    assert "shared_buffers" in given
