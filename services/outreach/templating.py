"""Message templates: a subject and body per purpose and locale, rendered in a sandboxed Jinja2
environment (no attribute access to Python internals, no imports, bounded size).

The built-in templates are version 0 of each key and locale; `PUT /templates/{key}/{locale}`
stores versions 1, 2, ... and the newest is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SOURCE = 20_000
MAX_OUTPUT = 100_000

_ENV = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


class RenderError(ValueError):
    """A template that does not parse or render; the message names the problem."""


@dataclass(frozen=True)
class TemplateText:
    key: str
    locale: str
    purpose: str
    subject: str
    body: str
    sms_body: str | None = None
    version: int = 0


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    short: str  # SMS / WeChat text


def check(source: str) -> None:
    """Raise RenderError unless `source` is a template this environment accepts."""
    if len(source) > MAX_SOURCE:
        raise RenderError(f"a template is at most {MAX_SOURCE} characters")
    try:
        _ENV.parse(source)
    except TemplateError as exc:
        raise RenderError(f"template error: {exc}") from exc


def _render(source: str, variables: dict[str, Any]) -> str:
    check(source)
    try:
        text = _ENV.from_string(source).render(**variables)
    except TemplateError as exc:  # SecurityError included
        raise RenderError(f"template error: {exc}") from exc
    if len(text) > MAX_OUTPUT:
        raise RenderError("the rendered message is too long")
    return text


def render(template: TemplateText, variables: dict[str, Any]) -> Rendered:
    subject = " ".join(_render(template.subject, variables).split())
    body = _render(template.body, variables).strip() + "\n"
    short_source = template.sms_body or template.subject
    short = " ".join(_render(short_source, variables).split())
    return Rendered(subject=subject, body=body, short=short)


PURPOSES = {
    "survey_invitation": "transactional",
    "case_acknowledged": "transactional",
    "case_resolved": "transactional",
    "loyalty_level_changed": "transactional",
    "loyalty_points_expiring": "transactional",
    "birthday_greeting": "marketing",
    "festival_greeting": "marketing",
    "winback": "marketing",
}

_UNSUB_ZH = "{% if unsubscribe_url %}\n\n不想再收到此类邮件？退订：{{ unsubscribe_url }}{% endif %}"
_UNSUB_EN = (
    "{% if unsubscribe_url %}\n\nDon't want these e-mails? Unsubscribe: {{ unsubscribe_url }}"
    "{% endif %}"
)

_BUILT_IN: dict[tuple[str, str], tuple[str, str, str]] = {
    ("survey_invitation", "zh-CN"): (
        "请告诉我们您的体验",
        "{{ name or '您' }}，您好：\n\n感谢您的信任。请花一分钟告诉我们您的体验：\n"
        "{{ survey_url }}\n\n此链接仅可使用一次，{{ expires_on }} 前有效。",
        "请评价我们的服务：{{ survey_url }}",
    ),
    ("survey_invitation", "en"): (
        "Tell us how we did",
        "Dear {{ name or 'customer' }},\n\nThank you for your trust. Please take a minute to "
        "tell us about your experience:\n{{ survey_url }}\n\nThe link works once and until "
        "{{ expires_on }}.",
        "How did we do? {{ survey_url }}",
    ),
    ("case_acknowledged", "zh-CN"): (
        "我们已受理您的问题（编号 {{ reference }}）",
        "{{ name or '您' }}，您好：\n\n我们已收到并受理您的问题，编号 {{ reference }}。"
        "我们会尽快处理并告知您结果。",
        "您的问题已受理，编号 {{ reference }}。",
    ),
    ("case_acknowledged", "en"): (
        "We are on it (reference {{ reference }})",
        "Dear {{ name or 'customer' }},\n\nWe have received your case, reference "
        "{{ reference }}, and are working on it. We will let you know the outcome.",
        "Your case {{ reference }} is being handled.",
    ),
    ("case_resolved", "zh-CN"): (
        "您的问题已处理完毕（编号 {{ reference }}）",
        "{{ name or '您' }}，您好：\n\n您的问题（编号 {{ reference }}）已处理完毕。"
        "{% if outcome %}\n处理结果：{{ outcome }}{% endif %}\n\n如有疑问，请直接回复我们。",
        "您的问题 {{ reference }} 已处理完毕。",
    ),
    ("case_resolved", "en"): (
        "Your case {{ reference }} is resolved",
        "Dear {{ name or 'customer' }},\n\nYour case, reference {{ reference }}, is resolved."
        "{% if outcome %}\nOutcome: {{ outcome }}{% endif %}\n\nReply to us if anything is "
        "still open.",
        "Your case {{ reference }} is resolved.",
    ),
    ("birthday_greeting", "zh-CN"): (
        "生日快乐！",
        "{{ name or '您' }}，您好：\n\n祝您生日快乐，万事如意！" + _UNSUB_ZH,
        "祝您生日快乐！",
    ),
    ("birthday_greeting", "en"): (
        "Happy birthday!",
        "Dear {{ name or 'customer' }},\n\nHappy birthday, and all the best for the year "
        "ahead!" + _UNSUB_EN,
        "Happy birthday from all of us!",
    ),
    ("festival_greeting", "zh-CN"): (
        "{{ festival_zh }}快乐",
        "{{ name or '您' }}，您好：\n\n值此{{ festival_zh }}之际，祝您和家人节日快乐！" + _UNSUB_ZH,
        "祝您{{ festival_zh }}快乐！",
    ),
    ("festival_greeting", "en"): (
        "Happy {{ festival_en }}",
        "Dear {{ name or 'customer' }},\n\nOur warmest wishes to you and your family for "
        "{{ festival_en }}!" + _UNSUB_EN,
        "Happy {{ festival_en }}!",
    ),
    ("winback", "zh-CN"): (
        "好久不见，我们想念您",
        "{{ name or '您' }}，您好：\n\n好久不见！您的专属客户经理会尽快与您联系。"
        "{% if coupon_code %}\n为表心意，送您优惠券：{{ coupon_code }}{% endif %}" + _UNSUB_ZH,
        "好久不见！{% if coupon_code %}优惠券：{{ coupon_code }}{% endif %}",
    ),
    ("winback", "en"): (
        "We miss you",
        "Dear {{ name or 'customer' }},\n\nIt has been a while! Your account manager will be "
        "in touch soon.{% if coupon_code %}\nA small thank-you: coupon {{ coupon_code }}"
        "{% endif %}" + _UNSUB_EN,
        "We miss you!{% if coupon_code %} Coupon: {{ coupon_code }}{% endif %}",
    ),
    ("loyalty_level_changed", "zh-CN"): (
        "您的会员等级已变更为 {{ level }}",
        "{{ name or '您' }}，您好：\n\n您的会员等级已变更为 {{ level }}。",
        "您的会员等级已变更为 {{ level }}。",
    ),
    ("loyalty_level_changed", "en"): (
        "Your membership level is now {{ level }}",
        "Dear {{ name or 'customer' }},\n\nYour membership level is now {{ level }}.",
        "Your membership level is now {{ level }}.",
    ),
    ("loyalty_points_expiring", "zh-CN"): (
        "您有 {{ points }} 积分即将过期",
        "{{ name or '您' }}，您好：\n\n您有 {{ points }} 积分将于 {{ expires_on }} 过期，"
        "请及时使用。",
        "您有 {{ points }} 积分将于 {{ expires_on }} 过期。",
    ),
    ("loyalty_points_expiring", "en"): (
        "{{ points }} points expire soon",
        "Dear {{ name or 'customer' }},\n\n{{ points }} of your points expire on "
        "{{ expires_on }}. Use them before then.",
        "{{ points }} points expire on {{ expires_on }}.",
    ),
}

BUILT_IN: dict[tuple[str, str], TemplateText] = {
    (key, locale): TemplateText(key, locale, PURPOSES[key], subject, body, short)
    for (key, locale), (subject, body, short) in _BUILT_IN.items()
}

# Example values for previews, per key (the variables each template is given).
SAMPLE_VARIABLES: dict[str, dict[str, Any]] = {
    "survey_invitation": {"survey_url": "https://kehu.example/s/TOKEN", "expires_on": "2026-12-15"},
    "case_acknowledged": {"reference": "C-7F3A21"},
    "case_resolved": {"reference": "C-7F3A21", "outcome": "replacement sent"},
    "birthday_greeting": {"unsubscribe_url": "https://kehu.example/u/TOKEN"},
    "festival_greeting": {
        "festival_zh": "春节",
        "festival_en": "Spring Festival",
        "unsubscribe_url": "https://kehu.example/u/TOKEN",
    },
    "winback": {"coupon_code": "WELCOME-BACK-10", "unsubscribe_url": "https://kehu.example/u/T"},
    "loyalty_level_changed": {"level": "gold"},
    "loyalty_points_expiring": {"points": 1200, "expires_on": "2026-12-31"},
}
