"""Settings of the outreach service, from the environment (`OUTREACH_*` for its own)."""

from __future__ import annotations

from datetime import date
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, Field, model_validator

from shared.settings import ServiceSettings


class Festival(BaseModel):
    """A festival greeting sent to every customer on a date (春节, 中秋 ... move every year)."""

    key: str = Field(examples=["spring_festival"])
    date: date
    name_zh: str = Field(examples=["春节"])
    name_en: str = Field(examples=["Spring Festival"])


class SmtpTarget(BaseModel):
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # implicit TLS (smtps://, port 465)
    start_tls: bool = False  # STARTTLS after connecting (submission port 587)
    ca_file: str | None = None  # trust this CA bundle (a private CA) instead of the system's


def parse_smtp_url(
    url: str, start_tls: bool | None = None, ca_file: str | None = None
) -> SmtpTarget:
    """`smtp://user:pass@host:587?starttls=true` or `smtps://host:465` as connection settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("OUTREACH_SMTP_URL must look like smtp://host:port or smtps://host:port")
    query = parse_qs(parts.query)
    implicit = parts.scheme == "smtps"
    wanted = query.get("starttls", [""])[0].lower() in ("1", "true", "yes")
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=implicit,
        start_tls=(start_tls if start_tls is not None else wanted) and not implicit,
        ca_file=ca_file,
    )


class ProviderSettings(BaseModel):
    """An HTTP messaging provider (SMS or WeChat): where to send, how to sign."""

    url: str | None = None
    key_id: str = "kehu"
    secret: str = ""
    callback_secret: str = ""


class Settings(ServiceSettings):
    """Settings of the outreach service.

    Channels: `OUTREACH_SMTP_URL` (e-mail), `OUTREACH_SMS_URL` / `OUTREACH_WECHAT_URL` with
    their `*_KEY_ID`, `*_SECRET` (signs requests) and `*_CALLBACK_SECRET` (checks callbacks).
    """

    service_name: str = "outreach"
    service_database_url: str | None = Field(None, validation_alias="OUTREACH_DATABASE_URL")

    # -- e-mail ------------------------------------------------------------------------------
    smtp_url: str = Field("smtp://127.0.0.1:8025", validation_alias="OUTREACH_SMTP_URL")
    smtp_starttls: bool | None = Field(None, validation_alias="OUTREACH_SMTP_STARTTLS")
    smtp_ca_file: str | None = Field(None, validation_alias="OUTREACH_SMTP_CA_FILE")
    smtp_timeout_s: float = Field(10.0, gt=0, validation_alias="OUTREACH_SMTP_TIMEOUT_S")
    mail_from: str = Field("Kehu <noreply@kehu.invalid>", validation_alias="OUTREACH_MAIL_FROM")

    # -- SMS and WeChat providers ------------------------------------------------------------
    sms_url: str | None = Field(None, validation_alias="OUTREACH_SMS_URL")
    sms_key_id: str = Field("kehu", validation_alias="OUTREACH_SMS_KEY_ID")
    sms_secret: str = Field("", validation_alias="OUTREACH_SMS_SECRET")
    sms_callback_secret: str = Field("", validation_alias="OUTREACH_SMS_CALLBACK_SECRET")
    wechat_url: str | None = Field(None, validation_alias="OUTREACH_WECHAT_URL")
    wechat_key_id: str = Field("kehu", validation_alias="OUTREACH_WECHAT_KEY_ID")
    wechat_secret: str = Field("", validation_alias="OUTREACH_WECHAT_SECRET")
    wechat_callback_secret: str = Field("", validation_alias="OUTREACH_WECHAT_CALLBACK_SECRET")
    email_callback_secret: str = Field("", validation_alias="OUTREACH_EMAIL_CALLBACK_SECRET")
    provider_timeout_s: float = Field(10.0, gt=0, validation_alias="OUTREACH_PROVIDER_TIMEOUT_S")

    # -- the dev SMTP sink (make dev) -----------------------------------------------------------
    dev_smtp_sink_port: int | None = Field(None, validation_alias="OUTREACH_DEV_SMTP_SINK_PORT")

    # -- peers -------------------------------------------------------------------------------
    profiles_url: str = Field("http://127.0.0.1:8001", validation_alias="OUTREACH_PROFILES_URL")
    interactions_url: str = Field(
        "http://127.0.0.1:8002", validation_alias="OUTREACH_INTERACTIONS_URL"
    )
    loyalty_url: str = Field("http://127.0.0.1:8006", validation_alias="OUTREACH_LOYALTY_URL")
    peer_timeout_s: float = Field(5.0, gt=0, validation_alias="OUTREACH_PEER_TIMEOUT_S")
    # Where customers reach the survey page and the unsubscribe link (this service, public).
    public_base_url: str = Field(
        "http://127.0.0.1:8007", validation_alias="OUTREACH_PUBLIC_BASE_URL"
    )
    # Signs survey and unsubscribe links; generated per deployment (falls back to the JWT
    # secret, which production requires to be strong).
    link_secret: str | None = Field(None, validation_alias="OUTREACH_LINK_SECRET")
    survey_link_ttl_days: float = Field(14, gt=0, validation_alias="OUTREACH_SURVEY_LINK_DAYS")

    # -- policy --------------------------------------------------------------------------------
    default_locale: Literal["zh-CN", "en"] = Field("zh-CN", validation_alias="OUTREACH_LOCALE")
    default_timezone: str = Field("Asia/Shanghai", validation_alias="OUTREACH_TIMEZONE")
    quiet_start: str = Field("21:00", validation_alias="OUTREACH_QUIET_START")
    quiet_end: str = Field("09:00", validation_alias="OUTREACH_QUIET_END")
    # Marketing messages per customer within the window; more are suppressed (`frequency_cap`).
    marketing_cap: int = Field(3, ge=0, validation_alias="OUTREACH_MARKETING_CAP")
    marketing_cap_days: float = Field(7, gt=0, validation_alias="OUTREACH_MARKETING_CAP_DAYS")
    max_attempts: int = Field(6, ge=1, validation_alias="OUTREACH_MAX_ATTEMPTS")
    retry_base_s: float = Field(30, gt=0, validation_alias="OUTREACH_RETRY_BASE_S")
    retry_max_s: float = Field(6 * 3600, gt=0, validation_alias="OUTREACH_RETRY_MAX_S")

    # -- triggers (each consumer on/off) -------------------------------------------------------
    consumers_enabled: bool = Field(True, validation_alias="OUTREACH_CONSUMERS")
    consumer_group: str = Field("outreach", validation_alias="OUTREACH_CONSUMER_GROUP")
    survey_invitations: bool = Field(True, validation_alias="OUTREACH_TRIGGER_SURVEYS")
    case_notices: bool = Field(True, validation_alias="OUTREACH_TRIGGER_CASES")
    # The service desk's case events (every case type, complaints included).
    case_topics: list[str] = Field(
        default_factory=lambda: ["kehu.complaints"], validation_alias="OUTREACH_CASE_TOPICS"
    )
    case_acknowledged_types: list[str] = Field(
        default_factory=lambda: ["kehu.case.acknowledged.v1"],
        validation_alias="OUTREACH_CASE_ACKNOWLEDGED_TYPES",
    )
    case_resolved_types: list[str] = Field(
        default_factory=lambda: ["kehu.case.resolved.v1"],
        validation_alias="OUTREACH_CASE_RESOLVED_TYPES",
    )
    greetings: bool = Field(True, validation_alias="OUTREACH_TRIGGER_GREETINGS")
    festivals: list[Festival] = Field(default_factory=list, validation_alias="OUTREACH_FESTIVALS")
    winback: bool = Field(True, validation_alias="OUTREACH_TRIGGER_WINBACK")
    winback_followup_days: float = Field(2, ge=0, validation_alias="OUTREACH_WINBACK_DUE_DAYS")
    winback_coupon: bool = Field(False, validation_alias="OUTREACH_WINBACK_COUPON")
    loyalty_notices: bool = Field(True, validation_alias="OUTREACH_TRIGGER_LOYALTY")
    loyalty_topic: str = Field("kehu.loyalty", validation_alias="OUTREACH_LOYALTY_TOPIC")

    # -- jobs ------------------------------------------------------------------------------------
    dispatcher_enabled: bool = Field(True, validation_alias="OUTREACH_DISPATCHER")
    dispatch_interval_s: float = Field(2.0, gt=0, validation_alias="OUTREACH_DISPATCH_INTERVAL_S")
    dispatch_batch: int = Field(50, ge=1, validation_alias="OUTREACH_DISPATCH_BATCH")
    greetings_interval_s: float = Field(
        300.0, gt=0, validation_alias="OUTREACH_GREETINGS_INTERVAL_S"
    )

    @model_validator(mode="after")
    def _no_dev_sink_in_production(self) -> Settings:
        if self.env == "production" and self.dev_smtp_sink_port is not None:
            raise ValueError("the dev SMTP sink (OUTREACH_DEV_SMTP_SINK_PORT) is off in production")
        if self.env == "production" and self.link_secret is not None and len(self.link_secret) < 32:
            raise ValueError("OUTREACH_LINK_SECRET must be at least 32 characters in production")
        parse_smtp_url(self.smtp_url)
        return self

    @property
    def smtp(self) -> SmtpTarget:
        return parse_smtp_url(self.smtp_url, self.smtp_starttls, self.smtp_ca_file)

    @property
    def dev_mail_enabled(self) -> bool:
        return self.dev_smtp_sink_port is not None and self.env != "production"

    @property
    def link_key(self) -> bytes:
        return (self.link_secret or "outreach-links:" + self.signing_secret).encode()

    def provider(self, channel: str) -> ProviderSettings:
        return ProviderSettings(
            url=getattr(self, f"{channel}_url", None),
            key_id=getattr(self, f"{channel}_key_id", "kehu"),
            secret=getattr(self, f"{channel}_secret", ""),
            callback_secret=getattr(self, f"{channel}_callback_secret", ""),
        )
