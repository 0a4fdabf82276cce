"""The customer-facing pages (survey, unsubscribe) and the dev mail page: small, mobile-friendly,
bilingual (zh-CN / en) HTML, autoescaped. No personal data beyond the greeting name."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

_ENV = Environment(autoescape=True)

DIMENSIONS = ("overall", "product_quality", "service", "price", "delivery", "after_sales")

TEXT: dict[str, dict[str, Any]] = {
    "zh-CN": {
        "lang": "zh-CN",
        "other": ("en", "English"),
        "title": "满意度调查",
        "hello": "{name}，您好！",
        "hello_anon": "您好！",
        "intro": "感谢您抽出一分钟时间。请为以下各项打分（1 = 很不满意，5 = 非常满意）。",
        "dimensions": {
            "overall": "总体满意度",
            "product_quality": "产品质量",
            "service": "服务",
            "price": "价格",
            "delivery": "交付",
            "after_sales": "售后",
        },
        "nps": "您有多大可能向朋友或同事推荐我们？（0 = 完全不可能，10 = 非常可能）",
        "effort": "解决您的问题有多费力？（1 = 非常轻松，7 = 非常费力）",
        "comment": "还有什么想告诉我们的吗？（可选）",
        "submit": "提交",
        "thanks_title": "感谢您的反馈！",
        "thanks": "您的回答已收到。",
        "used_title": "此链接已使用",
        "used": "这份问卷已经提交过了，感谢您的参与。每个链接只能使用一次。",
        "expired_title": "此链接已过期",
        "expired": "这份问卷的有效期已过。如需反馈，请直接联系我们。",
        "invalid_title": "链接无效",
        "invalid": "无法识别此链接。请检查邮件中的完整链接。",
        "busy_title": "请稍后再试",
        "busy": "我们暂时无法保存您的回答。请稍后再提交一次，您的链接仍然有效。",
        "need_answer": "请至少回答一个评分问题。",
        "unsub_title": "退订",
        "unsub_ask": "您将不再收到我们的营销信息（{purpose}）。"
        "服务类通知（例如您的问题处理进展）不受影响。",
        "unsub_button": "确认退订",
        "unsub_done_title": "已退订",
        "unsub_done": "您已成功退订，我们不会再向您发送此类营销信息。",
    },
    "en": {
        "lang": "en",
        "other": ("zh-CN", "中文"),
        "title": "Satisfaction survey",
        "hello": "Hello {name}!",
        "hello_anon": "Hello!",
        "intro": "Thank you for taking a minute. Please rate each (1 = very unhappy, "
        "5 = very happy).",
        "dimensions": {
            "overall": "Overall",
            "product_quality": "Product quality",
            "service": "Service",
            "price": "Price",
            "delivery": "Delivery",
            "after_sales": "After-sales",
        },
        "nps": "How likely are you to recommend us to a friend or colleague? (0 = not at all, "
        "10 = extremely likely)",
        "effort": "How much effort did it take to get what you needed? (1 = very little, "
        "7 = a great deal)",
        "comment": "Anything else you would like to tell us? (optional)",
        "submit": "Send",
        "thanks_title": "Thank you for your feedback!",
        "thanks": "We have received your answers.",
        "used_title": "This link was used already",
        "used": "This survey has been answered already. Thank you! Each link works once.",
        "expired_title": "This link has expired",
        "expired": "This survey is closed. To give feedback, please contact us directly.",
        "invalid_title": "Invalid link",
        "invalid": "We do not recognise this link. Please use the whole link from the message.",
        "busy_title": "Please try again shortly",
        "busy": "We could not save your answers just now. Please send them again in a moment; "
        "your link still works.",
        "need_answer": "Please answer at least one rating question.",
        "unsub_title": "Unsubscribe",
        "unsub_ask": "You will no longer receive our marketing messages ({purpose}). Service "
        "notices (such as updates on your case) are not affected.",
        "unsub_button": "Unsubscribe",
        "unsub_done_title": "Unsubscribed",
        "unsub_done": "You are unsubscribed; we will send you no more of these messages.",
    },
}

_LAYOUT = """<!doctype html>
<html lang="{{ t.lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#f5f6f8;color:#1d1f23}
main{max-width:34rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.35rem}
fieldset{border:1px solid #d6d9de;border-radius:.6rem;margin:0 0 1rem;padding:.75rem;
background:#fff}
legend{font-weight:600;padding:0 .3rem}
.scale{display:flex;flex-wrap:wrap;gap:.35rem}
.scale label{display:inline-flex;align-items:center;justify-content:center;min-width:2.4rem;
min-height:2.4rem;border:1px solid #c3c8cf;border-radius:.4rem;background:#fafbfc;cursor:pointer}
.scale input{margin:0 .2rem 0 0}
textarea{width:100%;min-height:5rem;box-sizing:border-box;font:inherit}
button{font:inherit;font-size:1.05rem;padding:.7rem 1.4rem;border:0;border-radius:.5rem;
background:#c8102e;color:#fff;width:100%}
.lang{float:right;font-size:.9rem}
.error{color:#a00;font-weight:600}
</style>
</head>
<body><main>
{% if switch %}<a class="lang" href="{{ switch }}">{{ t.other[1] }}</a>{% endif %}
<h1>{{ title }}</h1>
{{ content }}
</main></body></html>
"""

_SURVEY = """
<p>{{ greeting }}</p>
<p>{{ t.intro }}</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="lang" value="{{ t.lang }}">
{% for d in dimensions %}
<fieldset><legend>{{ t.dimensions[d] }}</legend><div class="scale">
{% for v in range(1, 6) %}<label><input type="radio" name="{{ d }}" value="{{ v }}"
 aria-label="{{ t.dimensions[d] }} {{ v }}">{{ v }}</label>{% endfor %}
</div></fieldset>
{% endfor %}
<fieldset><legend>{{ t.nps }}</legend><div class="scale">
{% for v in range(0, 11) %}<label><input type="radio" name="nps" value="{{ v }}"
 aria-label="NPS {{ v }}">{{ v }}</label>{% endfor %}
</div></fieldset>
<fieldset><legend>{{ t.effort }}</legend><div class="scale">
{% for v in range(1, 8) %}<label><input type="radio" name="effort" value="{{ v }}"
 aria-label="effort {{ v }}">{{ v }}</label>{% endfor %}
</div></fieldset>
<fieldset><legend>{{ t.comment }}</legend>
<textarea name="comment" maxlength="5000"></textarea></fieldset>
<button type="submit">{{ t.submit }}</button>
</form>
"""

_NOTICE = """<p id="notice">{{ text }}</p>"""

_UNSUBSCRIBE = """
<p>{{ ask }}</p>
<form method="post" action="{{ action }}"><input type="hidden" name="lang" value="{{ t.lang }}">
<button type="submit">{{ t.unsub_button }}</button></form>
"""

_DEV_MAIL = """
<p>{{ count }} mail(s), newest first. JSON: <a href="/dev/mail">/dev/mail</a></p>
{% for m in mails %}
<fieldset><legend>{{ m.subject }}</legend>
<div>#{{ m.id }} · {{ m.received_at }} · to {{ m.recipients }}</div>
<pre style="white-space:pre-wrap">{{ m.body }}</pre></fieldset>
{% endfor %}
"""


def texts(locale: str | None) -> dict[str, Any]:
    return TEXT["en" if (locale or "").lower().startswith("en") else "zh-CN"]


def _page(t: dict[str, Any], title: str, content: str, switch: str | None = None) -> str:
    from markupsafe import Markup

    return _ENV.from_string(_LAYOUT).render(
        t=t, title=title, content=Markup(content), switch=switch
    )


def survey(
    locale: str | None, name: str | None, action: str, path: str, error: str | None = None
) -> str:
    t = texts(locale)
    greeting = t["hello"].format(name=name) if name else t["hello_anon"]
    content = _ENV.from_string(_SURVEY).render(
        t=t, greeting=greeting, action=action, dimensions=DIMENSIONS, error=error
    )
    return _page(t, t["title"], content, switch=f"{path}?lang={t['other'][0]}")


def notice(locale: str | None, kind: str) -> str:
    """A page that says one thing: thanks, used, expired, invalid, busy, unsub_done; in both
    languages when the customer's is not known."""
    if locale:
        t = texts(locale)
        content = _ENV.from_string(_NOTICE).render(text=t[kind])
        return _page(t, t[f"{kind}_title"], content)
    zh, en = TEXT["zh-CN"], TEXT["en"]
    content = _ENV.from_string(_NOTICE + '<p lang="en">{{ en }}</p>').render(
        text=zh[kind], en=en[kind]
    )
    return _page(zh, f"{zh[kind + '_title']} / {en[kind + '_title']}", content)


def unsubscribe(locale: str | None, purpose: str, action: str, path: str) -> str:
    t = texts(locale)
    content = _ENV.from_string(_UNSUBSCRIBE).render(
        t=t, ask=t["unsub_ask"].format(purpose=purpose), action=action
    )
    return _page(t, t["unsub_title"], content, switch=f"{path}?lang={t['other'][0]}")


def dev_mail(mails: list[dict[str, Any]]) -> str:
    t = texts("en")
    content = _ENV.from_string(_DEV_MAIL).render(mails=mails, count=len(mails))
    return _page(t, "Dev mail sink", content)
