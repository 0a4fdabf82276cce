from typing import Literal

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Settings of the analytics service, from the environment (`ANALYTICS_*` for its own)."""

    service_name: str = "analytics"
    service_database_url: str | None = Field(None, validation_alias="ANALYTICS_DATABASE_URL")

    # The consumer: group and topics (tests point them at their own copies).
    # Off for API-only replicas (and tests of the read side): they serve, others consume.
    consumer_enabled: bool = Field(True, validation_alias="ANALYTICS_CONSUMER_ENABLED")
    # Larger batches than the platform default: per-batch work grows with the customers a
    # batch touches, not with its events, so bigger batches drain a backlog faster.
    consumer_batch_size: int = Field(5000, ge=1, validation_alias="ANALYTICS_CONSUMER_BATCH_SIZE")
    # Catch-up: a batch with more new events than this (a backlog) skips the per-customer
    # recompute and leaves it to the debounced re-rank, which follows within the max delay.
    incremental_max_batch: int = Field(
        500, ge=0, validation_alias="ANALYTICS_INCREMENTAL_MAX_BATCH"
    )
    consumer_group: str = Field("analytics", validation_alias="ANALYTICS_CONSUMER_GROUP")
    consumed_topics: list[str] = Field(
        default_factory=lambda: [
            "kehu.customers",
            "kehu.interactions",
            "kehu.complaints",
            "kehu.loyalty",
        ],
        validation_alias="ANALYTICS_CONSUMED_TOPICS",
    )

    # Metric window: trailing days ending now.
    window_days: int = Field(365, ge=1, validation_alias="ANALYTICS_WINDOW_DAYS")
    # ABC cut: A while the contribution ranked before a customer is < tier_a_share of the total.
    tier_a_share: float = Field(0.80, gt=0, lt=1, validation_alias="ANALYTICS_TIER_A_SHARE")
    tier_b_share: float = Field(0.95, gt=0, lt=1, validation_alias="ANALYTICS_TIER_B_SHARE")

    # Lifecycle and churn: inactivity relative to the customer's own purchase rhythm.
    default_purchase_interval_days: float = Field(
        90.0, gt=0, validation_alias="ANALYTICS_DEFAULT_PURCHASE_INTERVAL_DAYS"
    )
    min_purchase_interval_days: float = Field(
        7.0, gt=0, validation_alias="ANALYTICS_MIN_PURCHASE_INTERVAL_DAYS"
    )
    at_risk_factor: float = Field(1.5, gt=0, validation_alias="ANALYTICS_AT_RISK_FACTOR")
    churned_factor: float = Field(3.0, gt=0, validation_alias="ANALYTICS_CHURNED_FACTOR")
    loyal_min_purchases: int = Field(4, ge=1, validation_alias="ANALYTICS_LOYAL_MIN_PURCHASES")
    recent_days: int = Field(90, ge=1, validation_alias="ANALYTICS_RECENT_DAYS")
    churn_medium_from: int = Field(40, ge=0, le=100, validation_alias="ANALYTICS_CHURN_MEDIUM")
    churn_high_from: int = Field(70, ge=0, le=100, validation_alias="ANALYTICS_CHURN_HIGH")

    # Revisit cadence by tier (days between contacts), as interactions plans it by default:
    # the staff figure `revisit_compliance_pct` counts contacts within it.
    cadence_a_days: int = Field(14, ge=1, validation_alias="ANALYTICS_CADENCE_A_DAYS")
    cadence_b_days: int = Field(30, ge=1, validation_alias="ANALYTICS_CADENCE_B_DAYS")
    cadence_c_days: int = Field(90, ge=1, validation_alias="ANALYTICS_CADENCE_C_DAYS")

    # Targets reported with their gap by GET /satisfaction.
    target_csat_pct: float = Field(95.0, validation_alias="ANALYTICS_TARGET_CSAT_PCT")
    target_nps: float = Field(50.0, validation_alias="ANALYTICS_TARGET_NPS")
    target_effort_mean: float = Field(2.5, validation_alias="ANALYTICS_TARGET_EFFORT_MEAN")
    target_resolution_rating_pct: float = Field(
        95.0, validation_alias="ANALYTICS_TARGET_RESOLUTION_RATING_PCT"
    )

    # Global re-rank: runs `rerank_debounce_s` after the last change (but at most
    # `rerank_max_delay_s` after the first pending one), and at least every `rerank_every_s`
    # because inactivity-based measures change with time alone.
    rerank_debounce_s: float = Field(2.0, ge=0, validation_alias="ANALYTICS_RERANK_DEBOUNCE_S")
    rerank_max_delay_s: float = Field(30.0, ge=0, validation_alias="ANALYTICS_RERANK_MAX_DELAY_S")
    rerank_every_s: float = Field(3600.0, gt=0, validation_alias="ANALYTICS_RERANK_EVERY_S")
    # Memory per sort/hash of the re-rank: the window functions sort every customer.
    rerank_work_mem: str = Field(
        "256MB", pattern=r"^\d+(kB|MB|GB)$", validation_alias="ANALYTICS_RERANK_WORK_MEM"
    )
    # The re-rank applies its differences in transactions of this many customers (each locks
    # only those rows, briefly); rows a batch holds are retried this often, this far apart.
    rerank_chunk: int = Field(20_000, ge=1, validation_alias="ANALYTICS_RERANK_CHUNK")
    # Chunks applied at once, each on its own pooled connection (the apply is bound by
    # PostgreSQL's writes: one connection keeps one of its cores busy).
    rerank_apply_connections: int = Field(
        2, ge=1, validation_alias="ANALYTICS_RERANK_APPLY_CONNECTIONS"
    )
    rerank_retries: int = Field(5, ge=0, validation_alias="ANALYTICS_RERANK_RETRIES")
    rerank_retry_delay_s: float = Field(
        0.2, ge=0, validation_alias="ANALYTICS_RERANK_RETRY_DELAY_S"
    )
    # A re-rank recomputes every customer's facts from the fact tables at least this often;
    # in between only those of customers whose facts may have changed (see recompute.py).
    rerank_full_every_s: float = Field(
        86_400.0, ge=0, validation_alias="ANALYTICS_RERANK_FULL_EVERY_S"
    )
    rerank_poll_s: float = Field(0.5, gt=0, validation_alias="ANALYTICS_RERANK_POLL_S")
    rerank_statement_timeout_ms: int = Field(
        600_000, validation_alias="ANALYTICS_RERANK_STATEMENT_TIMEOUT_MS"
    )

    # Rebuild: the other services' event feeds.
    profiles_url: str = Field("http://127.0.0.1:8001", validation_alias="PROFILES_URL")
    interactions_url: str = Field("http://127.0.0.1:8002", validation_alias="INTERACTIONS_URL")
    complaints_url: str = Field("http://127.0.0.1:8003", validation_alias="COMPLAINTS_URL")
    loyalty_url: str = Field("http://127.0.0.1:8006", validation_alias="LOYALTY_URL")
    rebuild_page_size: int = Field(1000, ge=1, le=1000, validation_alias="ANALYTICS_REBUILD_PAGE")
    # Catch-up: the repair path beside Kafka (see catchup.py). 0 turns it off.
    catchup_every_s: float = Field(30.0, ge=0, validation_alias="ANALYTICS_CATCHUP_EVERY_S")
    # Only events at least this old are checked: Kafka normally delivers them well before.
    catchup_grace_s: float = Field(60.0, ge=0, validation_alias="ANALYTICS_CATCHUP_GRACE_S")
    catchup_sources: list[Literal["profiles", "interactions", "complaints", "loyalty"]] = Field(
        ["profiles", "interactions", "complaints", "loyalty"],
        validation_alias="ANALYTICS_CATCHUP_SOURCES",
    )
