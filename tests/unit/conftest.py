"""Unit tests: pure logic, no PostgreSQL, no broker, no environment needed (`make unit`).

A test belongs here when it needs neither the database nor the broker; everything that
crosses into them lives in the other folders and runs with `make test`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Generated dev secrets (signing secret, encryption keys) go to a throwaway directory
    rather than the checkout's `.kehu/`, unless `make test` already chose one for the run."""
    if os.environ.get("KEHU_STATE_DIR"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEHU_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        patch.setenv("KEHU_ENV", "test")
        yield
