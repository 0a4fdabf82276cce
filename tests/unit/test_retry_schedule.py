"""The webhook retry schedule: about three days of backing-off attempts, each one jittered."""

from __future__ import annotations

from services.subscriptions.config import DEFAULT_RETRY_SCHEDULE_S, Settings
from services.subscriptions.delivery import retry_delay


def test_default_retries_span_about_three_days_with_jitter() -> None:
    total_days = sum(DEFAULT_RETRY_SCHEDULE_S) / 86400
    assert 2.5 < total_days < 3.5
    assert DEFAULT_RETRY_SCHEDULE_S == sorted(DEFAULT_RETRY_SCHEDULE_S)  # backing off
    plain = Settings()
    delays = [retry_delay(plain, 1) for _ in range(200)]
    assert all(d is not None and 4.0 <= d <= 6.0 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 50  # jittered, not synchronised
    assert retry_delay(plain, len(DEFAULT_RETRY_SCHEDULE_S)) is not None
    assert retry_delay(plain, len(DEFAULT_RETRY_SCHEDULE_S) + 1) is None


def test_each_failed_attempt_waits_its_own_step_of_the_schedule() -> None:
    exact = Settings(webhook_retry_schedule_s=[1, 10, 100], webhook_retry_jitter=0)
    assert [retry_delay(exact, n) for n in (1, 2, 3, 4)] == [1, 10, 100, None]


def test_jitter_stays_within_its_fraction_of_the_step() -> None:
    spread = Settings(webhook_retry_schedule_s=[100], webhook_retry_jitter=0.5)
    delays = [retry_delay(spread, 1) for _ in range(500)]
    assert all(d is not None and 50 <= d <= 150 for d in delays)
    assert min(d or 0 for d in delays) < 60 and max(d or 0 for d in delays) > 140
