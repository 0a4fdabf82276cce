"""Serve one service with `KEHU_WORKERS` processes: `python -m shared.serve SERVICE [--port N]`.

Used by `make dev`, the image (deploy/Dockerfile), compose and the Kubernetes manifests, so a
service runs the same way everywhere:

- `KEHU_WORKERS` uvicorn worker processes share the port. Unset, it is 1 in dev and test and
  the CPUs this process may use (its CPU affinity, capped by a cgroup CPU quota) otherwise.
- With more than one worker, Prometheus metrics are aggregated across the processes
  (prometheus_client's multiprocess mode): `PROMETHEUS_MULTIPROC_DIR` is the directory the
  workers write their samples to; a fresh one per service start unless it is set, and emptied
  at start either way (the client's rule: stale files of dead processes would count).

Each worker runs the whole service, relay, consumers and schedulers included: the relay
serialises on an advisory lock, consumers share their group's partitions, and every scheduler
claims its work in the database, so N workers act like N replicas.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def cpu_count() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def workers_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """`KEHU_WORKERS`, or its default: 1 in dev and test, the usable CPUs in production."""
    raw = (environ.get("KEHU_WORKERS") or "").strip()
    if raw:
        value = int(raw)
        if value < 1:
            raise ValueError(f"KEHU_WORKERS must be >= 1, not {value}")
        return value
    return 1 if environ.get("KEHU_ENV", "dev") in ("dev", "test") else cpu_count()


def prepare_metrics_dir(service: str, workers: int, environ: dict[str, str]) -> str | None:
    """Set up (and empty) the multiprocess metrics directory when several workers run, or
    when the environment names one (then the workers use it whatever their number)."""
    if workers < 2 and not environ.get(MULTIPROC_ENV):
        return None
    path = environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix=f"kehu-metrics-{service}-")
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*.db"):
        stale.unlink()
    environ[MULTIPROC_ENV] = str(target)
    return str(target)


# How long an idle keep-alive connection stays open: well past the clients' own expiry (httpx
# keeps one 5 s, load balancers usually 60 s). With uvicorn's default of 5 s a client could send
# its next request on a connection at the moment the server closes it, and read nothing back.
KEEP_ALIVE_S = 75


def uvicorn_args(
    service: str, host: str, port: int, workers: int, extra: list[str] | None = None
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"services.{service}.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        str(KEEP_ALIVE_S),
        *(extra or []),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.serve")
    parser.add_argument("service")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--proxy-headers", action="store_true")
    args = parser.parse_args(argv)
    workers = workers_from_env()
    environ = dict(os.environ)
    metrics_dir = prepare_metrics_dir(args.service, workers, environ)
    extra = ["--proxy-headers"] if args.proxy_headers else []
    command = uvicorn_args(args.service, args.host, args.port, workers, extra)
    if metrics_dir is None or MULTIPROC_ENV in os.environ:
        os.execvpe(command[0], command, environ)  # nothing of ours to clean up afterwards
    # A directory we made: run uvicorn as a child so it can be removed when it stops.
    import signal
    import subprocess

    process = subprocess.Popen(command, env=environ)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: process.send_signal(s))
    code = process.wait()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
