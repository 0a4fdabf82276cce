"""`python -m shared.serve`: `KEHU_WORKERS` processes on one port, `/metrics` answering for all
of them together, and the split into API processes and a worker process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from sqlalchemy.engine import make_url

from services.profiles.config import Settings as ProfilesSettings
from shared.auth import issue_token
from shared.devstack import ROOT, free_port
from shared.serve import WORKER_NICE
from tests.conftest import scratch_database
from tests.helpers import wait_ready
from tests.profiles.factories import customer_payload

pytestmark = pytest.mark.timeout(180)


def requests_counted(text: str, route: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kehu_http_requests_total{") and f'route="{route}"' in line
    )


def test_two_workers_serve_one_port_and_report_metrics_together() -> None:
    port = free_port()
    process = serve("complaints", port, KEHU_WORKERS="2")
    url = f"http://127.0.0.1:{port}"
    workers: list[psutil.Process] = []
    try:
        # Live, not ready: readiness would also wait for the consumer group's rebalance.
        wait_ready(url, probe="live")
        workers = [
            p
            for p in psutil.Process(process.pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(workers) == 2, [p.cmdline() for p in workers]
        with httpx.Client(base_url=url, timeout=10) as client:
            before = requests_counted(client.get("/metrics").text, "/health/live")
            for _ in range(40):
                # A new connection each time, so both workers get some of the requests.
                assert httpx.get(f"{url}/health/live", timeout=10).status_code == 200
            time.sleep(0.5)
            counts = [
                requests_counted(client.get("/metrics").text, "/health/live") - before
                for _ in range(4)
            ]
        # Whichever worker answers /metrics reports every worker's requests.
        assert counts == [40.0] * 4, counts
    finally:
        process.terminate()
        process.wait(30)
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, "workers left running after the service stopped"


def serve(service: str, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "KEHU_ROLE"):
        if name not in extra:
            env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "shared.serve", service, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def published(database: str, customer_id: str) -> tuple[int | None, Any] | None:
    """The feed position and publication time of the customer's `created` event."""
    url = make_url(database).set(drivername="postgresql")

    async def read() -> tuple[int | None, Any] | None:
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            row = await conn.fetchrow(
                "SELECT position, published_at FROM outbox"
                " WHERE subject = $1 AND type = 'kehu.customer.created.v1'",
                customer_id,
            )
        finally:
            await conn.close()
        return None if row is None else (row["position"], row["published_at"])

    return asyncio.run(read())


async def test_split_service_serves_on_api_processes_and_relays_on_its_worker() -> None:
    """With `KEHU_ROLE=split` a service runs as API processes and one worker process: the API's
    readiness includes the worker's broker and consumer checks; an API commit wakes the
    worker's relay across the processes (the relays here poll only every 120 s, so only the
    wake-up can publish the event within the test); and when the worker dies the whole
    service stops, for its supervisor to restart it.

    On a database of its own: the suite's in-process profiles app shares the default one, and
    its relay may hold the relay lock in a transaction of the session's event loop."""
    async with scratch_database("profiles") as database:
        await asyncio.to_thread(run_split_service, database)


def run_split_service(database: str) -> None:
    port = free_port()
    process = serve(
        "profiles",
        port,
        KEHU_ROLE="split",
        KEHU_WORKERS="1",
        OUTBOX_POLL_INTERVAL_S="120",
        PROFILES_DATABASE_URL=database,
    )
    url = f"http://127.0.0.1:{port}"
    children: list[psutil.Process] = []
    try:
        checks = wait_ready(url)["checks"]
        assert checks["worker"] == {"status": "pass"}, checks
        assert checks["broker"]["status"] == "pass", checks
        assert any(name.startswith("consumer:") for name in checks), checks
        children = psutil.Process(process.pid).children()
        roles = {p.environ().get("KEHU_ROLE"): p for p in children}
        assert sorted(roles) == ["api", "worker"], roles
        assert roles["worker"].nice() == WORKER_NICE and roles["api"].nice() == 0
        run_dir = roles["api"].environ()["KEHU_RUN_DIR"]

        token = issue_token(ProfilesSettings(), "admin")
        response = httpx.post(
            f"{url}/customers",
            json=customer_payload(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        customer_id = response.json()["id"]
        deadline = time.monotonic() + 30
        state = published(database, customer_id)
        while time.monotonic() < deadline and not (state and state[1]):
            time.sleep(0.2)
            state = published(database, customer_id)
        assert state is not None and state[0] is not None and state[1] is not None, state

        roles["worker"].kill()
        assert process.wait(60) != 0
        assert not os.path.exists(run_dir)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, "processes left running after the service stopped"
