"""The collector's passes are timed into `kehu_gc_pause_seconds`, by generation."""

from __future__ import annotations

import gc

from shared.metrics import GC_PAUSE, GcTimer


def passes(generation: int) -> float:
    for metric in GC_PAUSE.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
                return sample.value
    return 0.0


def test_each_collection_is_observed_under_its_generation() -> None:
    timer = GcTimer()
    gc.callbacks.append(timer)
    try:
        before = [passes(g) for g in range(3)]
        gc.collect(2)
        gc.collect(0)
        gc.collect(0)
        after = [passes(g) for g in range(3)]
    finally:
        gc.callbacks.remove(timer)
    assert after[2] == before[2] + 1
    assert after[0] >= before[0] + 2  # the test's own allocations may add young passes
