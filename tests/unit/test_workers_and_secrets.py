"""Several processes per service: `KEHU_WORKERS`, metrics summed across workers, and dev
secrets that concurrent first starts agree on."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from shared import serve
from shared.devstack import ROOT
from shared.settings import create_once


def _secret_of(state_dir: str) -> str:
    from shared.settings import dev_secret

    return dev_secret(Path(state_dir))


def _keyring_of(state_dir: str) -> str:
    from shared.crypto import load_keyring

    ring = load_keyring("dev", Path(state_dir), environ={})
    return json.dumps({k: v.hex() for k, v in ring.keys.items()}) + ring.index_key.hex()


@pytest.mark.parametrize("read", [_secret_of, _keyring_of])
def test_concurrent_first_starts_agree_on_one_dev_secret(tmp_path: Path, read: object) -> None:
    state = tmp_path / "state"
    with ProcessPoolExecutor(8) as pool:
        values = list(pool.map(read, [str(state)] * 32))  # type: ignore[arg-type]
    assert len(set(values)) == 1
    files = [p for p in state.iterdir()]
    assert len(files) == 1, f"temporary files left behind: {files}"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_create_once_keeps_the_first_value(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert create_once(path, lambda: "first") == "first"
    assert create_once(path, lambda: "second") == "first"


def test_workers_default_to_one_in_dev_and_to_the_cpus_in_production() -> None:
    assert serve.workers_from_env({}) == 1
    assert serve.workers_from_env({"KEHU_ENV": "test"}) == 1
    assert serve.workers_from_env({"KEHU_ENV": "production"}) == serve.cpu_count()
    assert serve.workers_from_env({"KEHU_ENV": "production", "KEHU_WORKERS": ""}) >= 1
    assert serve.workers_from_env({"KEHU_WORKERS": "3"}) == 3
    with pytest.raises(ValueError):
        serve.workers_from_env({"KEHU_WORKERS": "0"})


def test_serving_passes_the_worker_count_to_uvicorn() -> None:
    args = serve.uvicorn_args("profiles", ["--host", "0.0.0.0", "--port", "8000"], 4)
    assert args[args.index("--workers") + 1] == "4"
    assert args[args.index("--port") + 1] == "8000"
    assert "services.profiles.main:create_app" in args


def test_a_service_runs_whole_processes_unless_told_to_split() -> None:
    assert serve.role_from_env({}) == "all"
    for role in ("split", "all", "api", "worker"):
        assert serve.role_from_env({"KEHU_ROLE": role}) == role
    with pytest.raises(ValueError, match="KEHU_ROLE"):
        serve.role_from_env({"KEHU_ROLE": "everything"})


def test_only_services_built_on_the_shared_app_get_a_worker_process() -> None:
    """A worker process runs the relay, consumers and schedulers of `shared.app`; a plain
    FastAPI app (the console) has none, so it is served whole."""
    for main in sorted((ROOT / "services").glob("*/main.py")):
        service = main.parent.name
        built_on_shared_app = "create_service_app(" in main.read_text()
        assert (service in serve.WITHOUT_BACKGROUND) == (not built_on_shared_app), service


def test_supervision_stops_the_other_processes_when_one_exits(tmp_path: Path) -> None:
    """The worker and the API processes live and die together: the first to exit stops the
    others, its code is the service's, the scratch directories go; the worker runs niced."""
    scratch = tmp_path / "run"
    scratch.mkdir()
    marker = tmp_path / "niceness"
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    failing = [
        sys.executable,
        "-c",
        f"import os, sys; open({str(marker)!r}, 'w').write(str(os.nice(0))); sys.exit(5)",
    ]
    code = serve.supervise(
        [serve.Command(sleeper, dict(os.environ)), serve.Command(failing, dict(os.environ), 7)],
        [str(scratch)],
    )
    assert code == 5
    assert marker.read_text() == str(os.nice(0) + 7)
    assert not scratch.exists()


def test_several_workers_get_an_emptied_metrics_directory(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert serve.prepare_metrics_dir("profiles", 1, environ) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in environ
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(given)}
    assert serve.prepare_metrics_dir("profiles", 2, environ) == str(given)
    assert list(given.iterdir()) == []
    # Named by the deployment (the Kubernetes manifests do): made ready even for one worker.
    named = tmp_path / "named" / "metrics"
    assert serve.prepare_metrics_dir("profiles", 1, {"PROMETHEUS_MULTIPROC_DIR": str(named)})
    assert named.is_dir()


WORKER = """
import sys
from shared import metrics
metrics.HTTP_REQUESTS.labels("profiles", "GET", "/customers", "200").inc(int(sys.argv[1]))
metrics.CONSUMER_LAG.labels("g").set(int(sys.argv[1]))
"""


def test_metrics_are_summed_across_worker_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", WORKER, str(n)], env=env, check=True, cwd=ROOT)
    # livesum gauges count only live processes: the two above are alive in this sense until
    # marked dead, as a stopped worker is.
    exposition = subprocess.run(
        [sys.executable, "-c", "from shared import metrics; print(metrics.exposition().decode())"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in exposition.splitlines() if x.startswith("kehu_http_requests_total{"))
    assert line.endswith(" 7.0"), line
    lag = next(x for x in exposition.splitlines() if x.startswith("kehu_consumer_lag{"))
    assert lag.endswith(" 7.0"), lag
