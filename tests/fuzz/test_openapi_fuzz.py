"""Schemathesis against every service's OpenAPI: no 5xx, every response matches its schema.

Each service runs as a real uvicorn process on the test stack; the fuzzer is bounded in examples
and time so CI stays fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.auth import issue_token
from shared.migrate import SERVICES
from shared.settings import ServiceSettings
from tests.helpers import ServiceProcess, wait_ready

MAX_EXAMPLES = os.environ.get("KEHU_FUZZ_EXAMPLES", "15")
MAX_TIME = os.environ.get("KEHU_FUZZ_SECONDS", "60")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@pytest.fixture(params=SERVICES)
def service_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # Its log goes to a file, not a pipe: nobody reads a pipe until the end, and once its buffer
    # is full the service blocks on its next log line (seen as minute-long "timeouts").
    service = ServiceProcess(request.param, dict(os.environ), tmp_path / f"{request.param}.log")
    service.start()
    try:
        # Ready, not just live: until its consumers have joined their groups a service answers
        # 503 on readiness, which the fuzzer would count as a server error.
        wait_ready(service.url)
        yield service.url
    finally:
        service.stop()
        # Server-side tracebacks explain a 500 better than the fuzzer's report.
        stderr = service.log_path.read_text()
        if "Traceback" in stderr:
            print(stderr[-5000:])


@pytest.mark.timeout(400)
def test_fuzzed_requests_never_get_server_errors(service_url: str, tmp_path: Path) -> None:
    token = issue_token(ServiceSettings(), "admin", subject="fuzzer")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{service_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            MAX_EXAMPLES,
            "--max-time",
            MAX_TIME,
            "--seed",
            "20261123",
            # One worker: with two, schemathesis on Python 3.11 can crash inside ast.parse.
            "--workers",
            "1",
            # Generous: on a loaded 2-core machine a slow answer is not a server error.
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
