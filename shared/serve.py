"""Serve one service with `KEHU_WORKERS` processes: `python -m shared.serve SERVICE [--port N]`.

Used by `make dev`, the image (deploy/Dockerfile), compose and the Kubernetes manifests, so a
service runs the same way everywhere:

- `KEHU_WORKERS` uvicorn worker processes share the port. Unset, it is 1 in dev and test and
  the CPUs this process may use (its CPU affinity, capped by a cgroup CPU quota) otherwise.
- With more than one process (a split service, below, has at least two), Prometheus metrics are
  aggregated across them (prometheus_client's multiprocess mode): `PROMETHEUS_MULTIPROC_DIR`
  is the directory the processes write their samples to; a fresh one per service start unless
  it is set, and emptied at start either way (the client's rule: stale files of dead processes
  would count).

What each process runs (`KEHU_ROLE`):

- unset (`all`): every process on the port runs the whole service, as N replicas would (the
  relay serialises on an advisory lock, consumers share their group's partitions, every
  scheduler claims its work in the database).
- `split`: the `KEHU_WORKERS` processes on the port only serve requests (role `api`),
  and one more process (role `worker`) runs the outbox relay, the consumers and the schedulers,
  so no request waits on its event loop behind a relay pass, a consumer batch or a scheduler's
  sweep (the operating system shares the CPUs between the processes instead, and the worker
  runs niced, `WORKER_NICE`, so requests go first when the CPUs are saturated). The API
  processes wake the worker's relay after a commit that wrote events (`shared.wake`, a Unix
  datagram socket) and their readiness includes the worker's (broker, consumers), read over its
  HTTP socket; both sockets live in a fresh run directory. If either side exits, the other is
  stopped and this command exits, so a supervisor restarts the whole service. Not the
  default: in `make bench` it lowered the median latency at half the maximum rate, but not
  the p99 reliably, and it lowered the maximum rate of profiles' writes (bench/closing-note.md):
  background work in its own process no longer waits while requests saturate the event loop.
- `api` or `worker`: only that part, on the port (one process for `worker`): for deployments
  that scale the two apart; the API's relay wake-ups are then left to the worker's polling.

The console has no background work: it always runs as `all`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.wake import WORKER_SOCKET

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


ROLES = ("split", "all", "api", "worker")


def role_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    role = (environ.get("KEHU_ROLE") or "all").strip()
    if role not in ROLES:
        raise ValueError(f"KEHU_ROLE must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def prepare_metrics_dir(service: str, processes: int, environ: dict[str, str]) -> str | None:
    """Set up (and empty) the multiprocess metrics directory when several processes run, or
    when the environment names one (then the processes use it whatever their number)."""
    if processes < 2 and not environ.get(MULTIPROC_ENV):
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
    service: str, bind: list[str], workers: int, extra: list[str] | None = None
) -> list[str]:
    """uvicorn serving `service` on `bind` (`--host H --port P` or `--uds PATH`)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"services.{service}.main:create_app",
        "--factory",
        *bind,
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        str(KEEP_ALIVE_S),
        *(extra or []),
    ]


# The worker process's niceness. With CPU to spare it changes nothing; when requests saturate
# the CPUs its Python gets weight 110 against the API's 1024 in Linux's scheduler (the SQL it
# sends runs in PostgreSQL at full priority all the same).
WORKER_NICE = 10


@dataclass
class Command:
    args: list[str]
    env: dict[str, str]
    nice: int = 0


# Plain FastAPI apps, not built on `shared.app`: nothing for a worker process to run.
WITHOUT_BACKGROUND = frozenset({"console"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.serve")
    parser.add_argument("service")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--proxy-headers", action="store_true")
    args = parser.parse_args(argv)
    role = role_from_env()
    if role == "split" and args.service in WITHOUT_BACKGROUND:
        role = "all"
    workers = 1 if role == "worker" else workers_from_env()
    environ = dict(os.environ)
    split = role == "split"
    metrics_dir = prepare_metrics_dir(args.service, workers + split, environ)
    extra = ["--proxy-headers"] if args.proxy_headers else []
    port = ["--host", args.host, "--port", str(args.port)]
    if not split:
        environ["KEHU_ROLE"] = role
        command = uvicorn_args(args.service, port, workers, extra)
        if metrics_dir is None or MULTIPROC_ENV in os.environ:
            os.execvpe(command[0], command, environ)  # nothing of ours to clean up afterwards
        # A directory we made: run uvicorn as a child so it can be removed when it stops.
        sys.exit(supervise([Command(command, environ)], [metrics_dir]))
    run_dir = tempfile.mkdtemp(prefix=f"kehu-{args.service}-")
    environ["KEHU_RUN_DIR"] = run_dir
    worker_socket = ["--uds", str(Path(run_dir) / WORKER_SOCKET)]
    commands = [
        Command(
            uvicorn_args(args.service, worker_socket, 1),
            {**environ, "KEHU_ROLE": "worker"},
            nice=WORKER_NICE,
        ),
        Command(uvicorn_args(args.service, port, workers, extra), {**environ, "KEHU_ROLE": "api"}),
    ]
    own = [run_dir] if MULTIPROC_ENV in os.environ else [run_dir, metrics_dir]
    sys.exit(supervise(commands, [d for d in own if d]))


def supervise(commands: list[Command], scratch: list[str]) -> int:
    """Run the commands as children until one exits or a stop signal comes, stop the others,
    remove the `scratch` directories. The exit code is that of the child that exited first, or
    when stopped by a signal, the first non-zero one of the children."""
    import signal
    import subprocess
    import time

    stop: list[int] = []  # handled before any child starts, so none is left behind
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.append(s))
    processes = [
        subprocess.Popen(
            c.args, env=c.env, preexec_fn=(lambda n=c.nice: os.nice(n)) if c.nice else None
        )
        for c in commands
    ]
    exited: list[subprocess.Popen[bytes]] = []
    while not stop and not exited:
        time.sleep(0.2)
        exited = [p for p in processes if p.poll() is not None]
    for process in processes:
        if process.poll() is None:
            process.send_signal(stop[0] if stop else signal.SIGTERM)
    for process in processes:
        process.wait()
    codes = [process.returncode for process in exited or processes]
    for directory in scratch:
        shutil.rmtree(directory, ignore_errors=True)
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    main()
