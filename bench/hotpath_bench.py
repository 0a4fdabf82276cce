"""The hot paths against their same-work baselines, in one run, with the same wrk settings.

For each path of `bench/hotpaths.py`: the baseline's maximum rate (`bench/samework.py`, one
uvicorn worker), the product's maximum rate (one worker), their ratio (target >= 0.6), the
product's p99 latency at half its maximum rate (target < 25 ms, open-loop, so no coordinated
omission) and the baseline's at that same rate (what the machine alone gives), each the median
of as many paced runs as rounds, alternating, with the CPU every part of the machine used
meanwhile, and the product's maximum with two workers per service (`KEHU_WORKERS=2`). With
`--profile`, every path that misses its ratio is sampled with py-spy while wrk loads it, and
the hottest functions are written to `bench/profiles/`.

`--product-ref COMMIT` runs the product from that commit (a temporary git worktree) against the
same baselines: how the "before" ratios in `bench/hotpaths_before.json` were measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.harness import BENCH_DIR, Report, analyze, checkpoint, wrk
from bench.hotpaths import HotPath, prepare_paths
from shared.devstack import ROOT, free_port, wait_for_port

TARGET_RATIO = 0.6
TARGET_P99_MS = 25.0
SERVICES = ("profiles", "interactions", "complaints", "analytics")
BEFORE_FILE = BENCH_DIR / "hotpaths_before.json"
PROFILE_DIR = BENCH_DIR / "profiles"


@dataclass
class Stack:
    """The product's services as real processes (`shared.serve`), `workers` each."""

    env: dict[str, str]
    workers: int = 1
    root: Path = ROOT
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    # Each service's run directory: its relay listens there for the wake datagram
    # (`shared.wake`) the baseline sends after a write, as the product's own commits wake it.
    run_dirs: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        log_dir = Path(tempfile.gettempdir()) / "kehu-bench-logs"
        log_dir.mkdir(exist_ok=True)
        common = {**self.env, "KEHU_WORKERS": str(self.workers), "PYTHONPATH": str(self.root)}
        for name in SERVICES:
            port = free_port()
            self.run_dirs[name] = tempfile.mkdtemp(prefix=f"kehu-bench-{name}-")
            env = {**common, "KEHU_RUN_DIR": self.run_dirs[name]}
            with (log_dir / f"{name}-{self.workers}w.log").open("a") as log:
                serve = [sys.executable, "-m", "shared.serve", name, "--port", str(port)]
                if not (self.root / "shared" / "serve.py").exists():  # an older product
                    serve = [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        f"services.{name}.main:create_app",
                        "--factory",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ]
                self.processes[name] = subprocess.Popen(
                    serve, cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=log
                )
            self.urls[name] = f"http://127.0.0.1:{port}"
        for url in self.urls.values():
            wait_for_port(int(url.rsplit(":", 1)[1]), 90)

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            for url in self.urls.values():
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{url}/health/ready")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)

    def relay_run_dirs(self) -> str:
        """BENCH_RELAY_RUN_DIRS for the baseline: `service=directory`, comma-separated."""
        return ",".join(f"{name}={path}" for name, path in self.run_dirs.items())

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for run_dir in self.run_dirs.values():
            shutil.rmtree(run_dir, ignore_errors=True)

    def pid_of(self, service: str) -> int:
        """The process that serves the service's requests (its API process when split)."""
        supervisor = psutil.Process(self.processes[service].pid)
        for child in supervisor.children():
            with contextlib.suppress(psutil.Error):
                if child.environ().get("KEHU_ROLE") == "api":
                    return child.pid
        return supervisor.pid


def start_baseline(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "bench.samework:app", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log"]
    log = (Path(tempfile.gettempdir()) / "kehu-bench-logs" / "samework.log").open("a")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    wait_for_port(port, 60)
    time.sleep(0.5)
    return process, f"http://127.0.0.1:{port}"


def load(path: HotPath, base_url: str, token: str, seconds: int) -> dict[str, float]:
    """wrk's closed-loop maximum; bench/request.lua builds each request of the path. A run
    that gives no figure (wrk failed) is tried once more."""
    for attempt in (1, 2):
        try:
            return wrk(
                base_url + "/",
                seconds=seconds,
                script=str(BENCH_DIR / "request.lua"),
                env=path.wrk_env(token),
            )
        except RuntimeError as exc:
            if attempt == 2:
                raise
            print(f"    {exc}; again", flush=True)
    raise AssertionError("unreachable")


def paced(
    path: HotPath, url: str, token: str, rate: float, seconds: int, connections: int = 16
) -> dict[str, Any]:
    """Latency at `rate` requests/s: wrk's connections each pace their requests (a random
    delay averaging their share of the interval), so the server is not saturated. With the
    CPU each part of the machine used meanwhile (`cpu`: cores busy, by `cpu_owner`)."""
    env = {**path.wrk_env(token), "BENCH_RATE": str(rate), "BENCH_CONNECTIONS": str(connections)}
    before, started = cpu_times(), time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once it has exited
    result: dict[str, Any] = wrk(
        url + "/",
        seconds=max(seconds, 5),
        connections=connections,
        script=str(BENCH_DIR / "request.lua"),
        env=env,
    )
    after, elapsed = cpu_times(), time.monotonic() - started
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    after["wrk"] = done.ru_utime + done.ru_stime
    before["wrk"] = children.ru_utime + children.ru_stime
    busy = {name: (after[name] - before.get(name, 0.0)) / elapsed for name in after}
    result["cpu"] = {name: round(c, 2) for name, c in sorted(busy.items(), key=lambda x: -x[1])}
    return result


def over_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Paced runs of one server at one rate, summed up: the median run's p50 and p99 (each
    run's p99 kept too), the mean achieved rate, the errors and the mean CPU by owner."""
    p99s = [r["p99_ms"] for r in runs if r.get("p99_ms") is not None]
    p50s = [r["p50_ms"] for r in runs if r.get("p50_ms") is not None]
    owners = {name for r in runs for name in r.get("cpu", {})}
    cpu = {name: sum(r.get("cpu", {}).get(name, 0.0) for r in runs) / len(runs) for name in owners}
    return {
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "non2xx": sum(r["non2xx"] for r in runs),
        "p50_ms": statistics.median(p50s) if p50s else None,
        "p99_ms": statistics.median(p99s) if p99s else None,
        "p99_runs": p99s,
        "cpu": {name: round(c, 2) for name, c in sorted(cpu.items(), key=lambda x: -x[1])},
    }


def cpu_owner(process: psutil.Process) -> str | None:
    """Whose work a process does, for the CPU accounting of a paced run."""
    try:
        name, command = process.name(), " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return None
    if name.startswith("postgres") or command.startswith("postgres"):
        return "postgres"
    if name.startswith(("kworker", "jbd2", "ksoftirqd", "kswapd")):
        return "kernel"
    if "tansu" in command:
        return "broker"
    if "bench.samework" in command:
        return "baseline"
    found = re.search(r"services\.(\w+)\.main", command)
    if found:  # a split service's worker process serves only its health, on a Unix socket
        return f"{found.group(1)} worker" if " --uds " in command else found.group(1)
    return None  # the bench itself, the shell, idle tools, wrk (its own count): left out


def cpu_times() -> dict[str, float]:
    """CPU seconds used so far by every process of the machine, summed by `cpu_owner`."""
    total: dict[str, float] = {}
    for process in psutil.process_iter():
        owner = cpu_owner(process)
        if owner is None:
            continue
        try:
            times = process.cpu_times()
        except (psutil.Error, OSError):
            continue
        total[owner] = total.get(owner, 0.0) + times.user + times.system
    return total


def interleaved(
    path: HotPath, baseline_url: str, token: str, seconds: int, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Baseline and product loaded in turn, `rounds` times each: a machine whose load drifts
    (other work on the same cores) shifts both alike. Rates are the totals over the rounds."""
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "product": []}
    for i in range(rounds):
        order = [("baseline", baseline_url), ("product", path.base_url)]
        for name, url in order if i % 2 == 0 else order[::-1]:
            runs[name].append(load(path, url, token, seconds))

    def total(results: list[dict[str, float]]) -> dict[str, float]:
        return {
            "rps": sum(r["rps"] for r in results) / len(results),
            "non2xx": sum(r["non2xx"] for r in results),
            "rounds": [r["rps"] for r in results],  # type: ignore[dict-item]
        }

    return total(runs["baseline"]), total(runs["product"])


def profile_while_loading(
    path: HotPath, base_url: str, token: str, pid: int, seconds: int
) -> str | None:
    """py-spy samples the product's process while wrk loads the path: the top functions."""
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy_bin).exists():
        return None
    PROFILE_DIR.mkdir(exist_ok=True)
    raw = Path(tempfile.mkdtemp()) / "stacks.txt"
    spy = subprocess.Popen(
        [
            *(spy_bin, "record", "--pid", str(pid), "--duration", str(seconds)),
            *("--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load(path, base_url, token, seconds)
    spy.wait(seconds + 60)
    if not raw.exists():
        return None
    slug = "".join(ch if ch.isalnum() else "_" for ch in path.name).strip("_").lower()
    out = PROFILE_DIR / f"{slug}.md"
    out.write_text(summarise_stacks(path.name, raw.read_text()))
    print(f"    raw py-spy stacks: {raw}", flush=True)
    return str(out.relative_to(ROOT))


# Frames every request passes through (server, routing, event loop): left out of the
# inclusive table, which would otherwise list only them.
PLUMBING = (
    *("uvicorn/", "starlette/", "asyncio/", "click/", "runpy", "anyio/", "fastapi/routing.py"),
    *("fastapi/applications.py", "fastapi/_body_limit.py", "fastapi/telemetry/"),
    *("fastapi/middleware/", "EdgeMiddleware.__call__ "),
)


def component(frame: str) -> str:
    """The package a frame's code belongs to ("func (path:line)")."""
    path = frame.rsplit(" (", 1)[-1]
    top = path.split("/", 1)[0]
    if top in ("shared", "services", "bench"):
        return f"{top}/ (Kehu)"
    if top.startswith("<frozen") or "/" not in path:
        return "python"
    return top


def summarise_stacks(name: str, collapsed: str, top: int = 25) -> str:
    """Where the samples went: by package (self time), by function (self), and the inclusive
    share of Kehu's and the libraries' functions (what they call included)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        packages[component(frames[-1])] += n
        for frame in set(frames):
            if not any(p in frame for p in PLUMBING):
                inclusive[frame] += n
    if not total:
        return f"# py-spy profile: {name}\n\nNo samples.\n"

    def table(counter: Counter[str], head: str) -> list[str]:
        rows = [f"| share | {head} |", "|---:|---|"]
        rows += [f"| {c / total:.1%} | `{f}` |" for f, c in counter.most_common(top)]
        return rows

    return "\n".join(
        [
            f"# py-spy profile: {name}",
            "",
            f"{total} samples (200/s) of the product's worker while wrk loaded the path "
            "(`make bench BENCH_ARGS=--profile`). Time in C extensions (asyncpg's protocol, "
            "pydantic-core, uvloop, the socket) counts for the Python function that called it.",
            "",
            "## By package (self time)",
            "",
            *table(packages, "package"),
            "",
            "## Inclusive, without the server and routing frames every request shares",
            "",
            *table(inclusive, "function (file:line)"),
            "",
            "## Self time by function",
            "",
            *table(own, "function (file:line)"),
            "",
        ]
    )


async def hot_paths(report: Report, env: dict[str, str], options: dict[str, Any]) -> None:
    from bench.scenarios import analytics_connection, bearer, drained

    seconds = int(options.get("seconds") or 8)
    rounds = int(options.get("rounds") or 3)
    product_root = Path(options.get("product_root") or ROOT)
    token = bearer()
    headers = {"Authorization": f"Bearer {token}"}
    stack = Stack(env, 1, product_root)
    stack.start()
    baseline, baseline_url = start_baseline({**env, "BENCH_RELAY_RUN_DIRS": stack.relay_run_dirs()})
    results: list[dict[str, Any]] = []

    async def settled(stack: Stack, timeout: float) -> None:
        """Until every consumer of the stack reports no lag and analytics has no re-rank
        pending or running (at most `timeout` s)."""
        analytics = await analytics_connection(env)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                urls = list(stack.urls.values())
                await drained(client, urls, timeout=timeout, analytics=analytics)
        finally:
            await analytics.close()

    async def steady(stack: Stack) -> None:
        """The state a server in service is in before each path: the WAL the last path wrote
        ready for reuse (`checkpoint`, see `steady_wal`), no backlog, and statistics for the
        tables' present size (`analyze`: the seeding and each path grow them many times over)."""
        await checkpoint(env["DATABASE_URL"])
        await settled(stack, 60)
        await analyze(env["DATABASE_URL"])

    try:
        await stack.ready()
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            paths = await prepare_paths(client, stack.urls)
        for path in paths:
            if options.get("path") and options["path"] not in path.name:
                continue
            print(f"  {path.name}", flush=True)
            await steady(stack)
            base, product = interleaved(path, baseline_url, token, seconds, rounds)
            half = max(10.0, product["rps"] / 2)
            # Latency in steady state: the saturated rounds leave the stack a backlog (every
            # request published events, and analytics re-ranks after them), and a p99 taken
            # while it is digested measures the backlog. Every paced run starts from no lag
            # and no pending re-rank; the re-ranks their own events ask for are in their
            # figures. Product and baseline alternate, `rounds` runs each: one run's p99 is
            # its 1 % slowest requests, which one stall of the shared machine can decide.
            runs: dict[str, list[dict[str, Any]]] = {"product": [], "baseline": []}
            for i in range(rounds):
                order = [("product", path.base_url), ("baseline", baseline_url)]
                for name, url in order if i % 2 == 0 else order[::-1]:
                    await settled(stack, 120)
                    runs[name].append(paced(path, url, token, half, seconds))
            latency, floor = over_runs(runs["product"]), over_runs(runs["baseline"])
            results.append(
                {
                    "path": path.name,
                    "baseline_rps": base["rps"],
                    "baseline_non2xx": base["non2xx"],
                    "kehu_rps": product["rps"],
                    "kehu_non2xx": product["non2xx"],
                    "rounds": {"baseline": base["rounds"], "kehu": product["rounds"]},
                    "ratio": product["rps"] / base["rps"] if base["rps"] else None,
                    "half_rate": half,
                    "achieved_rate_at_half": latency["rps"],
                    "p50_ms_at_half": latency["p50_ms"],
                    "p99_ms_at_half": latency["p99_ms"],
                    "p99_ms_at_half_runs": latency["p99_runs"],
                    "errors_at_half": int(latency["non2xx"]),
                    "baseline_p99_ms_at_half": floor["p99_ms"],
                    "baseline_p99_ms_at_half_runs": floor["p99_runs"],
                    "cpu_at_half": latency["cpu"],
                    "baseline_cpu_at_half": floor["cpu"],
                }
            )
            if options.get("profile") and (results[-1]["ratio"] or 0) < TARGET_RATIO:
                results[-1]["profile"] = profile_while_loading(
                    path, path.base_url, token, stack.pid_of(path.service), seconds
                )
    finally:
        stack.stop()
        baseline.terminate()
        baseline.wait(20)
    if options.get("workers2", True):
        two = Stack(env, 2, product_root)
        two.start()
        try:
            await two.ready()
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                paths = await prepare_paths(client, two.urls)
            for path in paths:
                row = next((r for r in results if r["path"] == path.name), None)
                if row is None:
                    continue
                await steady(two)
                scaled = load(path, path.base_url, token, seconds)
                row["kehu_rps_2_workers"] = scaled["rps"]
                row["scaling_1_to_2"] = scaled["rps"] / row["kehu_rps"] if row["kehu_rps"] else None
        finally:
            two.stop()
    before = json.loads(BEFORE_FILE.read_text()) if BEFORE_FILE.exists() else {}
    for row in results:
        prior = before.get("paths", {}).get(row["path"])
        row["before_ratio"] = prior["ratio"] if prior else None
        report.raw[f"kehu:{row['path']}"] = row["kehu_rps"]
    report.hot = results
    report.hot_meta = {
        "seconds": seconds,
        "wrk": f"-t2 -c32, bench/request.lua, {rounds} alternating rounds",
        "product": options.get("product_ref") or "this tree",
        "before": before.get("note"),
    }


def product_tree(ref: str) -> Path:
    """A temporary git worktree of the product at `ref`."""
    target = Path(tempfile.mkdtemp(prefix="kehu-product-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(target), ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return target


def remove_tree(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def write_before(results: list[dict[str, Any]], ref: str) -> None:
    BEFORE_FILE.write_text(
        json.dumps(
            {
                "note": f"product at {ref} against this tree's same-work baselines, same run",
                "paths": {r["path"]: r for r in results},
            },
            indent=2,
        )
        + "\n"
    )
