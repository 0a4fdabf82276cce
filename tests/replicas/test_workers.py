"""`KEHU_WORKERS`: `python -m shared.serve` runs that many worker processes on one port, and
`/metrics` answers for all of them together."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from shared.devstack import ROOT, free_port

pytestmark = pytest.mark.timeout(180)


def requests_counted(text: str, route: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kehu_http_requests_total{") and f'route="{route}"' in line
    )


def wait_alive(url: str, timeout: float = 90) -> None:
    """Up and answering (readiness would also wait for the consumer group's rebalance)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not alive after {timeout}s")


def test_two_workers_serve_one_port_and_report_metrics_together() -> None:
    port = free_port()
    env = {**os.environ, "KEHU_WORKERS": "2", "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.serve", "complaints", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    workers: list[psutil.Process] = []
    try:
        wait_alive(url)
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
