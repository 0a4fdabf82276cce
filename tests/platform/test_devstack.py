"""`make dev`'s stack runner: every service comes up ready, Ctrl-C stops all, data is kept."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from shared.devstack import ROOT, free_port

SERVICES = ("profiles", "interactions", "complaints", "analytics")


def start_dev(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.devstack", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(ports: list[int], process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        for port in list(pending):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    pending.discard(port)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    assert not pending, f"services on {sorted(pending)} never became ready"


def stop_and_check_no_orphans(process: subprocess.Popen[str]) -> str:
    children = psutil.Process(process.pid).children(recursive=True)
    assert len(children) >= len(SERVICES)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"orphans left running: {[p.pid for p in alive]}"
    return output


def dev_env(tmp_path: Path, offset: int, embedded: bool) -> dict[str, str]:
    env = dict(os.environ, KEHU_PORT_OFFSET=str(offset), KEHU_STATE_DIR=str(tmp_path / "state"))
    if embedded:
        env.pop("DATABASE_URL", None)
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env["KEHU_PG_PORT"] = str(free_port())
        env["KEHU_KAFKA_PORT"] = str(free_port())
    return env


def test_dev_uses_given_servers_and_stops_cleanly(tmp_path: Path) -> None:
    env = dev_env(tmp_path, 200, embedded=False)
    process = start_dev(env)
    try:
        wait_ready([8200, 8201, 8202, 8203, 8204, 8207], process)
        # outreach's dev SMTP sink is a real SMTP server; what it receives shows at /dev/mail.
        subject = f"sink check {uuid.uuid4().hex[:8]}"
        with smtplib.SMTP("127.0.0.1", 8225, timeout=10) as smtp:
            smtp.sendmail(
                "dev@kehu.invalid", ["someone@example.com"], f"Subject: {subject}\n\nhello"
            )
        mail = httpx.get("http://127.0.0.1:8207/dev/mail", timeout=10).json()
        assert any(m["subject"] == subject and m["body"].strip() == "hello" for m in mail)
        assert subject in httpx.get("http://127.0.0.1:8207/dev/mail/ui", timeout=10).text
    finally:
        if process.poll() is None:
            output = stop_and_check_no_orphans(process)
    assert "using DATABASE_URL from the environment" in output
    # The console is the front door: printed first, its page rather than API docs.
    front_door = "console       http://127.0.0.1:8200/\n"
    assert front_door in output
    assert output.index(front_door) < output.index("profiles      http://127.0.0.1:8201/docs")
    for service, port in zip(SERVICES, range(8201, 8205), strict=True):
        assert f"{service}" in output and f"http://127.0.0.1:{port}/docs" in output


@pytest.mark.timeout(300)
def test_dev_embedded_stack_keeps_data_between_runs(tmp_path: Path) -> None:
    env = dev_env(tmp_path, 300, embedded=True)
    pg_port = env["KEHU_PG_PORT"]
    url = f"postgresql://postgres@127.0.0.1:{pg_port}/kehu_profiles"
    for run in range(2):
        process = start_dev(env)
        try:
            wait_ready([8301, 8302, 8303, 8304], process)
            psql = [
                sys.executable,
                "-c",
                "import asyncio, asyncpg, sys\n"
                "async def main():\n"
                "    c = await asyncpg.connect(sys.argv[1])\n"
                "    await c.execute('CREATE TABLE IF NOT EXISTS marker (run int)')\n"
                "    await c.execute('INSERT INTO marker VALUES ($1)', int(sys.argv[2]))\n"
                "    print(await c.fetchval('SELECT count(*) FROM marker'))\n"
                "    await c.close()\n"
                "asyncio.run(main())",
                url,
                str(run),
            ]
            count = subprocess.run(psql, capture_output=True, text=True, check=True).stdout
            assert int(count) == run + 1, "the second run must see the first run's data"
        finally:
            if process.poll() is None:
                stop_and_check_no_orphans(process)
    assert (tmp_path / "state" / "pgdata" / "PG_VERSION").exists()
    for port in (pg_port, env["KEHU_KAFKA_PORT"]):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
