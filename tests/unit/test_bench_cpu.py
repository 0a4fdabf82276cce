"""The hot-path bench's CPU accounting of its paced runs: whose each process is, and the text."""

from __future__ import annotations

import psutil

from bench.harness import Report
from bench.hotpath_bench import cpu_owner, over_runs
from bench.run import busy_text, hot_table


class FakeProcess:
    def __init__(self, name: str, command: list[str] | None = None, gone: bool = False) -> None:
        self._name, self._command, self._gone = name, command or [], gone

    def name(self) -> str:
        if self._gone:
            raise psutil.NoSuchProcess(1)
        return self._name

    def cmdline(self) -> list[str]:
        return self._command


def owner(name: str, *command: str) -> str | None:
    return cpu_owner(FakeProcess(name, list(command)))  # type: ignore[arg-type]


def test_each_process_is_counted_for_the_part_of_the_machine_it_serves() -> None:
    assert owner("postgres", "postgres: kehu kehu_profiles 127.0.0.1(5432) INSERT") == "postgres"
    assert owner("kworker/u8:0-writeback") == "kernel"
    assert owner("jbd2/vda-8") == "kernel"
    assert owner("wrk", "wrk", "-t2") is None  # counted from the bench's children's usage
    assert owner("tansu", "/venv/bin/tansu", "broker") == "broker"
    assert owner("python", "python", "-m", "uvicorn", "bench.samework:app") == "baseline"
    served = ("python", "-m", "uvicorn", "services.profiles.main:create_app", "--factory")
    assert owner("python", *served) == "profiles"
    # A split service's worker process (shared.serve): served on its run directory's socket.
    worker = (*served, "--uds", "/tmp/kehu-profiles-x/worker.sock")
    assert owner("python", *worker) == "profiles worker"
    assert owner("python", "python", "-m", "bench") is None  # the bench itself: left out
    assert owner("bash", "bash") is None
    assert cpu_owner(FakeProcess("python", gone=True)) is None  # type: ignore[arg-type]


def test_the_busy_text_lists_the_busiest_first_with_the_total_and_drops_the_idle() -> None:
    text = busy_text({"profiles": 0.58, "kernel": 0.34, "postgres": 0.21, "broker": 0.01})
    assert text == "1.14 (profiles 0.58, kernel 0.34, postgres 0.21)"


def test_the_hot_table_shows_the_median_p99_its_range_and_the_cpu_of_the_paced_runs() -> None:
    report = Report(started_at="2026-12-01T00:00:00+00:00", machine={})
    report.hot = [
        {
            "path": "GET /customers (filtered page of 50)",
            "baseline_rps": 390.0,
            "kehu_rps": 341.0,
            "kehu_non2xx": 0,
            "baseline_non2xx": 0,
            "errors_at_half": 0,
            "ratio": 0.87,
            "half_rate": 170.5,
            "p99_ms_at_half": 38.2,
            "p99_ms_at_half_runs": [38.2, 115.1, 36.2],
            "baseline_p99_ms_at_half": 21.6,
            "baseline_p99_ms_at_half_runs": [21.6, 37.3, 19.0],
            "cpu_at_half": {"profiles": 0.58, "kernel": 0.34},
            "baseline_cpu_at_half": {"baseline": 0.49, "postgres": 0.19},
        }
    ]
    lines = hot_table(report)
    row = next(line for line in lines if line.startswith("| GET /customers (filtered"))
    assert "| 38.2 ms [36.2-115.1] (170/s; baseline 21.6 ms [19.0-37.3]) | NO |" in row
    cpu = next(line for line in lines if line.startswith("- GET /customers (filtered"))
    assert cpu == (
        "- GET /customers (filtered page of 50): Kehu's run 0.92 (profiles 0.58, kernel 0.34); "
        "the baseline's 0.68 (baseline 0.49, postgres 0.19)"
    )


def test_paced_runs_sum_up_to_the_median_run_with_every_p99_and_the_mean_cpu() -> None:
    runs = [
        {"rps": 170.0, "non2xx": 0.0, "p50_ms": 12.0, "p99_ms": 38.2, "cpu": {"profiles": 0.6}},
        {"rps": 160.0, "non2xx": 1.0, "p50_ms": 14.0, "p99_ms": 115.1, "cpu": {"kernel": 0.3}},
        {"rps": 168.0, "non2xx": 0.0, "p50_ms": 13.0, "p99_ms": 36.2, "cpu": {"profiles": 0.3}},
    ]
    summed = over_runs(runs)
    assert summed["p99_ms"] == 38.2 and summed["p50_ms"] == 13.0
    assert summed["p99_runs"] == [38.2, 115.1, 36.2]
    assert summed["rps"] == 166.0 and summed["non2xx"] == 1.0
    assert summed["cpu"] == {"profiles": 0.3, "kernel": 0.1}
