"""The outreach service's pure rules: quiet hours, back-off, locale and channel choice, consent,
recurring dates, signed links, sandboxed templates, provider signatures, SMTP settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.outreach import channels, links, policy
from services.outreach.config import ProviderSettings, Settings, parse_smtp_url
from services.outreach.templating import (
    BUILT_IN,
    SAMPLE_VARIABLES,
    RenderError,
    TemplateText,
    render,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NINE_PM, NINE_AM = time(21), time(9)


def test_quiet_hours_span_midnight_in_the_customers_time_zone() -> None:
    # 14:30 UTC is 22:30 in Shanghai: quiet until 09:00 the next morning there (01:00 UTC).
    now = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert policy.quiet_until(now, SHANGHAI, NINE_PM, NINE_AM) == datetime(
        2026, 12, 2, 1, 0, tzinfo=UTC
    )
    # 23:30 UTC is 07:30 in Shanghai the next day: quiet until 09:00 that same morning.
    early = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert policy.quiet_until(early, SHANGHAI, NINE_PM, NINE_AM) == datetime(
        2026, 12, 2, 1, 0, tzinfo=UTC
    )
    # 04:00 UTC is noon in Shanghai: not quiet; but in Los Angeles it is 20:00 the day before.
    noon = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    assert policy.quiet_until(noon, SHANGHAI, NINE_PM, NINE_AM) is None
    assert policy.quiet_until(noon, ZoneInfo("America/Los_Angeles"), NINE_PM, NINE_AM) is None
    late = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 22:00 in Los Angeles
    assert policy.quiet_until(late, ZoneInfo("America/Los_Angeles"), NINE_PM, NINE_AM) == datetime(
        2026, 12, 1, 17, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59), False),
        (time(21), True),
        (time(0, 30), True),
        (time(8, 59), True),
        (time(9), False),
    ],
)
def test_the_quiet_window_includes_its_start_and_excludes_its_end(local: time, quiet: bool) -> None:
    assert policy.in_quiet_hours(local, NINE_PM, NINE_AM) is quiet


def test_a_daytime_window_and_an_empty_one() -> None:
    assert policy.in_quiet_hours(time(13), time(12), time(14))
    assert not policy.in_quiet_hours(time(15), time(12), time(14))
    assert not policy.in_quiet_hours(time(3), time(0), time(0))


def test_backoff_grows_fourfold_and_is_capped() -> None:
    assert [policy.backoff_s(n, 30, 3600) for n in (1, 2, 3, 4, 5)] == [30, 120, 480, 1920, 3600]


def test_marketing_needs_a_current_grant() -> None:
    assert policy.consent_refusal("email", None) == "no_consent"
    assert policy.consent_refusal("email", (False, "unsubscribe_link")) == "consent_withdrawn"
    assert policy.consent_refusal("email", (True, "web_form")) is None
    assert policy.over_cap(3, 3) and not policy.over_cap(2, 3) and policy.over_cap(0, 0)


def test_locale_and_channel_choice() -> None:
    assert policy.pick_locale(None, "zh-Hans", default="en") == "zh-CN"
    assert policy.pick_locale("en-GB") == "en"
    assert policy.pick_locale("fi", None, default="zh-CN") == "zh-CN"
    assert policy.pick_channel("sms", "email") == "sms"
    assert policy.pick_channel("preferred", None, "phone", "wechat") == "wechat"
    assert policy.pick_channel("preferred", None) == "email"


def test_a_leap_day_birthday_is_greeted_on_28_february_in_a_common_year() -> None:
    dates: list[dict[str, int | str]] = [{"kind": "birthday", "month": 2, "day": 29}]
    assert policy.occurs_on(dates, "birthday", date(2027, 2, 28))
    assert not policy.occurs_on(dates, "birthday", date(2028, 2, 28))
    assert policy.occurs_on(dates, "birthday", date(2028, 2, 29))
    assert not policy.occurs_on(dates, "founding_day", date(2028, 2, 29))


def test_links_are_signed_and_bound_to_their_kind() -> None:
    token = links.sign(b"k" * 32, "survey", {"l": "abc"})
    assert links.verify(b"k" * 32, "survey", token)["l"] == "abc"
    with pytest.raises(links.BadToken):
        links.verify(b"other-key" * 4, "survey", token)
    with pytest.raises(links.BadToken):
        links.verify(b"k" * 32, "unsub", token)
    _, signature = token.split(".")
    forged = links.sign(b"k" * 32, "survey", {"l": "xyz"}).split(".")[0] + "." + signature
    with pytest.raises(links.BadToken):
        links.verify(b"k" * 32, "survey", forged)
    for garbage in ("", "abc", "a.b.c", "!!!.???", "x" * 3000):
        with pytest.raises(links.BadToken):
            links.verify(b"k" * 32, "survey", garbage)


def test_every_built_in_template_renders_in_both_locales() -> None:
    keys = {key for key, _ in BUILT_IN}
    for key in keys:
        for locale in ("zh-CN", "en"):
            rendered = render(BUILT_IN[(key, locale)], {"name": "Li", **SAMPLE_VARIABLES[key]})
            assert rendered.subject and rendered.body and rendered.short
            assert "{{" not in rendered.body


def test_templates_run_in_a_sandbox() -> None:
    escape = TemplateText("x", "en", "transactional", "hi", "{{ ''.__class__.__mro__ }}")
    with pytest.raises(RenderError):
        render(escape, {})
    broken = TemplateText("x", "en", "transactional", "hi", "{% if %}")
    with pytest.raises(RenderError):
        render(broken, {})


def test_provider_signatures_verify_only_fresh_untampered_bodies() -> None:
    provider = ProviderSettings(url="http://x", key_id="k1", secret="s3cret")
    headers = channels.signed_headers(provider, b'{"a":1}', now=1_000_000)
    ts, sig = headers["X-Kehu-Timestamp"], headers["X-Kehu-Signature"]
    assert channels.verify_signature("s3cret", ts, sig, b'{"a":1}', 1_000_010)
    assert not channels.verify_signature("s3cret", ts, sig, b'{"a":2}', 1_000_010)
    assert not channels.verify_signature("other", ts, sig, b'{"a":1}', 1_000_010)
    assert not channels.verify_signature("s3cret", ts, sig, b'{"a":1}', 1_000_000 + 3600)
    assert not channels.verify_signature("", ts, sig, b'{"a":1}', 1_000_010)


def test_smtp_urls_say_tls_starttls_and_credentials() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:8025")
    assert (plain.host, plain.port, plain.use_tls, plain.start_tls) == (
        "127.0.0.1",
        8025,
        False,
        False,
    )
    submission = parse_smtp_url("smtp://u%40x:p%2Fw@mail.example.com:587?starttls=true")
    assert submission.start_tls and submission.username == "u@x" and submission.password == "p/w"
    implicit = parse_smtp_url("smtps://mail.example.com")
    assert implicit.use_tls and implicit.port == 465 and not implicit.start_tls
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example.com")


def test_production_refuses_the_dev_mail_sink() -> None:
    with pytest.raises(ValueError, match="dev SMTP sink"):
        Settings(
            KEHU_ENV="production",  # type: ignore[call-arg]
            KEHU_JWT_SECRET="x" * 48,
            OUTREACH_DEV_SMTP_SINK_PORT=8025,
        )


def test_the_case_consumer_points_at_the_service_desks_events_by_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.outreach import consumers
    from services.outreach.service import case_reference

    default = Settings()
    assert {"kehu.case.acknowledged.v1", "kehu.case.resolved.v1"} <= set(
        consumers.handlers(default, lambda s: None)  # type: ignore[arg-type,return-value]
    )
    assert "kehu.complaints" in consumers.topics(default)
    # As an operator sets it: JSON lists in the environment (here: complaint events only).
    monkeypatch.setenv("OUTREACH_CASE_TOPICS", '["kehu.cases"]')
    monkeypatch.setenv("OUTREACH_CASE_ACKNOWLEDGED_TYPES", '["kehu.complaint.acknowledged.v1"]')
    monkeypatch.setenv("OUTREACH_CASE_RESOLVED_TYPES", '["kehu.complaint.resolved.v1"]')
    desk = Settings()
    handlers = consumers.handlers(desk, lambda s: None)  # type: ignore[arg-type,return-value]
    assert {"kehu.complaint.acknowledged.v1", "kehu.complaint.resolved.v1"} <= set(handlers)
    assert "kehu.case.acknowledged.v1" not in handlers
    assert "kehu.cases" in consumers.topics(desk) and "kehu.complaints" not in consumers.topics(
        desk
    )
    off = Settings(OUTREACH_TRIGGER_CASES=False, OUTREACH_TRIGGER_SURVEYS=False)  # type: ignore[call-arg]
    assert not {"kehu.case.resolved.v1", "kehu.survey.invited.v1"} & set(
        consumers.handlers(off, lambda s: None)  # type: ignore[arg-type,return-value]
    )
    # The reference a customer quotes: the case's own number, else one from its id.
    assert case_reference({"reference": "SR-2026-0042"}) == "SR-2026-0042"
    assert case_reference({"case_id": "7f3a21c4-0000-4000-8000-000000000000"}) == "C-7F3A21C4"
    assert case_reference({"complaint_id": "0b6f3c1e-2a4d-4e5f-9a8b-7c6d5e4f3a2b"}) == "C-0B6F3C1E"
