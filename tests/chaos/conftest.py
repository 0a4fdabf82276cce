"""The fault suite's own stack: a PostgreSQL, a broker and services it may kill and restart.

Unlike the rest of the suite, nothing here is shared: each module gets a private embedded
PostgreSQL, a private Tansu broker and the interactions and analytics services as real uvicorn
processes, so a fault stays inside the module. `make chaos` runs only this folder and writes
every scenario's figures to `bench/chaos.md` and `bench/chaos.json`; `make test` runs it too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy.engine import make_url

from shared.devstack import ROOT, EmbeddedPostgres, TansuBroker, free_port
from shared.migrate import alembic_config, ensure_database
from tests.helpers import ServiceProcess, wait_ready

SERVICES = ("interactions", "analytics")


@dataclass
class ChaosStack:
    postgres: EmbeddedPostgres
    broker: TansuBroker
    services: dict[str, ServiceProcess]

    def database_url(self, service: str) -> str:
        url = make_url(self.postgres.url).set(database=f"kehu_{service}")
        return url.render_as_string(hide_password=False)

    def kill_broker(self) -> None:
        """SIGKILL the broker; `broker.start()` brings up a new one on the same port (memory
        storage: every topic, record and committed offset is gone)."""
        assert self.broker.process is not None
        self.broker.process.send_signal(signal.SIGKILL)
        self.broker.process.wait()

    def restart_postgres(self, down_for: float = 0) -> None:
        self.postgres.stop()
        time.sleep(down_for)
        self.postgres.start()


def _migrate(url: str, service: str) -> None:
    async_url = make_url(url).set(drivername="postgresql+asyncpg")
    rendered = async_url.render_as_string(hide_password=False)
    asyncio.run(ensure_database(rendered))
    command.upgrade(alembic_config(service, rendered), "head")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    root = tmp_path_factory.mktemp("chaos")
    postgres = EmbeddedPostgres(root / "pgdata", free_port())
    broker = TansuBroker(free_port())
    postgres.start()
    broker.start()
    services: dict[str, ServiceProcess] = {}
    try:
        for service in SERVICES:
            url = make_url(postgres.url).set(database=f"kehu_{service}")
            _migrate(url.render_as_string(hide_password=False), service)
        interactions_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": postgres.url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "KEHU_RATE_LIMIT_PER_S": "0",
            "KEHU_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "INTERACTIONS_URL": f"http://127.0.0.1:{interactions_port}",
            "ANALYTICS_CATCHUP_SOURCES": '["interactions"]',
            "ANALYTICS_CATCHUP_EVERY_S": "2",
            "ANALYTICS_CATCHUP_GRACE_S": "5",
            "ANALYTICS_RERANK_DEBOUNCE_S": "0.5",
            # Small batches, so a backlog always takes several: the consumer can then be
            # killed mid-drain however few writes a loaded machine managed meanwhile.
            "ANALYTICS_CONSUMER_BATCH_SIZE": "100",
            "ANALYTICS_RERANK_MAX_DELAY_S": "3",
        }
        services["interactions"] = ServiceProcess(
            "interactions", env, root / "interactions.log", port=interactions_port
        )
        services["analytics"] = ServiceProcess("analytics", env, root / "analytics.log")
        for service in services.values():
            service.start()
        chaos = ChaosStack(postgres, broker, services)
        for service in services.values():
            wait_ready(service.url)
        yield chaos
    finally:
        for service in services.values():
            service.stop()
        broker.stop()
        postgres.stop()
        for service in services.values():
            if service.log_path.exists() and "Traceback" in service.log_path.read_text():
                print(f"--- {service.name} log ---\n{service.log_path.read_text()[-5000:]}")


def record(scenario: str, figures: dict[str, Any]) -> None:
    """Add a scenario's figures to `bench/chaos.json` and rewrite `bench/chaos.md` from it.

    Only under `make chaos` (KEHU_CHAOS_REPORT=1): a `make test` run leaves the tree clean.
    """
    if os.environ.get("KEHU_CHAOS_REPORT") != "1":
        return
    path = ROOT / "bench" / "chaos.json"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = json.loads(path.read_text()) if path.exists() else {"scenarios": {}}
    report["generated_at"] = stamp
    report["scenarios"][scenario] = {"measured_at": stamp, **figures}
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [
        "# Fault suite report",
        "",
        "Written by `make chaos` (the same tests run in `make test`) on the embedded stack:",
        "a private PostgreSQL, Tansu broker, and interactions and analytics as uvicorn",
        "processes. After each fault, the purchases, revenue and profit contribution per",
        "customer in analytics are reconciled with the interactions database, which must hold",
        "every write the API accepted.",
        "",
    ]
    for name, values in report["scenarios"].items():
        lines += [f"## {name}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in values.items()]
        lines.append("")
    (ROOT / "bench" / "chaos.md").write_text("\n".join(lines))
