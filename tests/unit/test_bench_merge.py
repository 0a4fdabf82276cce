"""A partial bench run (`--only`) merged into the last report: its figures replace theirs in
place, a figure new to the report goes beside them, the others stay."""

from __future__ import annotations

from dataclasses import asdict

from bench.harness import Figure, Report
from bench.run import merge_previous


def test_a_new_figure_of_a_re_run_scenario_goes_beside_its_others() -> None:
    previous = Report("earlier", {})
    for name, value in (("relay", 1.0), ("console server", 850.0), ("console render", 1226.0)):
        previous.figures.append(Figure(name, value, "ms"))
    previous.figures.append(Figure("chaos", 3.0, "s"))
    rerun = Report("now", {})
    for name, value in (("console server", 60.0), ("console render", 500.0), ("panel", 900.0)):
        rerun.figures.append(Figure(name, value, "ms"))

    merge_previous(rerun, {"started_at": "earlier", **asdict(previous)}, "console")

    assert [(f.name, f.value) for f in rerun.figures] == [
        ("relay", 1.0),
        ("console server", 60.0),
        ("console render", 500.0),
        ("panel", 900.0),
        ("chaos", 3.0),
    ]


def test_the_run_time_keeps_each_scenarios_last_re_run() -> None:
    """Re-running one scenario replaces its own note and keeps the others' (the hot paths'
    rows in the report still come from their own re-run)."""
    previous = {
        **asdict(Report("", {})),
        "started_at": "T0 (`--only hot_paths` re-run T1, `--only analytics` re-run T2)",
    }
    rerun = Report("T3", {})

    merge_previous(rerun, previous, "analytics")

    assert rerun.started_at == "T0 (`--only hot_paths` re-run T1, `--only analytics` re-run T3)"
    merge_previous(third := Report("T4", {}), asdict(rerun), "console")
    assert third.started_at == (
        "T0 (`--only hot_paths` re-run T1, `--only analytics` re-run T3, "
        "`--only console` re-run T4)"
    )


def test_a_first_re_run_notes_itself_after_the_full_runs_time() -> None:
    rerun = Report("T1", {})
    merge_previous(rerun, {**asdict(Report("T0", {}))}, "hot_paths")
    assert rerun.started_at == "T0 (`--only hot_paths` re-run T1)"
