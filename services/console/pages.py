"""The console's pages and form posts. Every figure is read from an API with the user's token;
every action posts through to an API. A panel whose API is missing says so and the page stays."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any
from urllib.parse import urlsplit

from authlib.integrations.base_client.errors import OAuthError
from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.console import figures, oidc
from services.console.config import Settings
from services.console.i18n import translate
from services.console.render import language, render
from services.console.session import (
    DEV_USERS,
    User,
    check_csrf,
    current_user,
    flash,
    sign_in,
    sign_out,
)
from services.console.upstream import Answer, Upstream
from shared.auth import ROLE_SCOPES, issue_token

router = APIRouter()

OPEN_COMPLAINT = ("received", "acknowledged", "investigating", "waiting_on_customer")
CHANNELS = ("phone", "email", "video", "meeting", "visit", "chat", "sms", "social", "other")
REVISIT_OUTCOMES = ("satisfied", "partially_satisfied", "not_satisfied", "unreachable")
MAX_NAMES = 50
# The dashboard's script gives the report panel the upstream timeout plus this before it
# gives up on the console itself.
REPORT_GRACE_S = 5.0
CustomerId = Annotated[uuid.UUID, Path()]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


def _local_path(target: str | None, default: str = "/") -> str:
    """Only a path on this console (no scheme, no host, no `//`): no open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):  # `/\host` is `//host` to browsers
        return default
    return target


def _signed_in(request: Request) -> User | Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={request.url.path}", 303)
    return user


def panel(answer: Answer) -> dict[str, Any]:
    """An API answer as a panel state: `ok` with data, `missing`, `forbidden` or `error`."""
    if answer.ok:
        return {"state": "ok", "data": answer.body}
    if answer.status == 403:
        return {"state": "forbidden", "detail": answer.detail}
    if answer.missing:
        return {"state": "missing", "detail": answer.detail}
    return {"state": "error", "detail": answer.detail}


async def customer_names(request: Request, user: User, ids: list[str]) -> dict[str, str]:
    """Display names of customers from profiles (masked as the user's scopes say)."""
    if not user.can("customers:read"):
        return {}
    unique = list(dict.fromkeys(ids))[:MAX_NAMES]
    upstream = _upstream(request)
    answers = await asyncio.gather(
        *(upstream.get("profiles", f"/customers/{i}", user.token) for i in unique)
    )
    return {
        i: f"{a.body.get('display_name')} ({a.body.get('customer_number')})"
        for i, a in zip(unique, answers, strict=True)
        if a.ok and isinstance(a.body, dict)
    }


# -- signing in and out ------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    user = current_user(request)
    return RedirectResponse(user.home if user else "/login", 303)


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str | None = None) -> Response:
    settings = _settings(request)
    users = [
        {"role": role, "subject": subject, "name": name}
        for role, subject, name in DEV_USERS
        if role in ROLE_SCOPES
    ]
    return render(
        request,
        "login.html",
        {
            "dev_users": users if settings.dev_login_enabled else [],
            "oidc": settings.oidc_enabled,
            "next": _local_path(next, ""),
        },
    )


@router.post("/login/dev", include_in_schema=False)
async def login_dev(
    request: Request,
    subject: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Sign in as one of the dev users: the dev identity provider is `issue_token`."""
    check_csrf(request, await request.form())
    settings = _settings(request)
    found = [u for u in DEV_USERS if u[1] == subject]
    if not settings.dev_login_enabled or not found:
        return render(request, "error.html", {"message_key": "no_sign_in"}, status_code=403)
    [(role, dev_subject, name)] = found
    ttl = settings.session_max_age_s
    token = issue_token(settings, role, subject=dev_subject, ttl_s=ttl, name=name)
    user = User(dev_subject, name, role, "", token, time.time() + ttl, "dev")
    sign_in(request, user)
    return RedirectResponse(_local_path(next, user.home), 303)


@router.get("/login/oidc", include_in_schema=False)
async def login_oidc(request: Request) -> Response:
    client = request.app.state.oidc
    if client is None:
        return RedirectResponse("/login", 303)
    settings = _settings(request)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return await client.authorize_redirect(request, base + "/auth/callback")


@router.get("/auth/callback", include_in_schema=False)
async def oidc_callback(request: Request) -> Response:
    client = request.app.state.oidc
    if client is None:
        return RedirectResponse("/login", 303)
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        flash(request, "action_failed", "error", f"{exc.error}: {exc.description or ''}")
        return RedirectResponse("/login", 303)
    user = oidc.user_of(_settings(request), token)
    sign_in(request, user)
    return RedirectResponse(user.home, 303)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    check_csrf(request, await request.form())
    sign_out(request)
    return RedirectResponse("/login", 303)


@router.get("/lang/{code}", include_in_schema=False)
async def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    if code in ("zh-CN", "en"):
        request.session["lang"] = code
    return RedirectResponse(_local_path(next, "/"), 303)


# -- the manager dashboard ---------------------------------------------------------------------


@router.get("/dashboard", include_in_schema=False)
async def dashboard(request: Request) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    if not user.can("analytics:read"):
        return render(request, "error.html", {"message_key": "forbidden"}, status_code=403)
    settings = _settings(request)
    upstream = _upstream(request)
    now = datetime.now(UTC).replace(microsecond=0)
    year_ago = (now - timedelta(days=365)).replace(day=1, hour=0, minute=0, second=0)
    quarter_ago = now - timedelta(days=90)
    month_start = now.replace(day=1, hour=0, minute=0, second=0)
    token = user.token
    # The management report is not read here: it is the slowest read (it scans the period's
    # changes), so the page asks for its panel after the charts are drawn (report_panel).
    tiers, satisfaction, complaints, churn, staff = await asyncio.gather(
        upstream.get("analytics", "/tiers", token, params={"limit": 200}),
        upstream.get(
            "analytics",
            "/satisfaction",
            token,
            params={"group_by": "month", "from": year_ago.isoformat(), "to": now.isoformat()},
        ),
        upstream.get(
            "analytics",
            "/complaints/stats",
            token,
            params={"group_by": "category", "from": quarter_ago.isoformat()},
        ),
        upstream.get("analytics", "/churn-risk", token, params={"limit": settings.churn_top_n}),
        upstream.get(
            "analytics",
            "/staff/performance",
            token,
            params={"from": month_start.isoformat(), "to": now.isoformat()},
        ),
    )
    context: dict[str, Any] = {
        "tiers": panel(tiers),
        "satisfaction": panel(satisfaction),
        "complaints": panel(complaints),
        "churn": panel(churn),
        "staff": panel(staff),
        # What the page's script waits for the report panel before it shows its own error.
        "report_timeout_ms": int((settings.upstream_timeout_s + REPORT_GRACE_S) * 1000),
    }
    t = partial(translate, language(request))
    specs: dict[str, Any] = {}
    if tiers.ok:
        rows = context["tier_rows"] = figures.tier_rows(tiers.body)
        points = context["pareto"] = figures.pareto_points(tiers.body)
        specs["tiers"] = figures.tier_chart(
            rows, {"customers": t("customers_count"), "share": t("contribution_share")}
        )
        specs["pareto"] = figures.pareto_chart(
            points, {"curve": t("contribution"), "x": t("pareto_x"), "y": t("pareto_y")}
        )
    if satisfaction.ok:
        series = figures.satisfaction_series(satisfaction.body)
        context["series"] = series
        context["satisfaction_rows"] = figures.satisfaction_rows(series)
        labels = {d: t(f"dim.{d}") for d in figures.DIMENSIONS} | {"target": t("target")}
        specs["satisfaction"] = figures.satisfaction_chart(series, labels)
        specs["nps"] = figures.nps_chart(series, labels)
    if complaints.ok:
        rows = context["complaint_rows"] = figures.complaint_rows(complaints.body)
        specs["complaints"] = figures.complaints_chart(
            rows, {"received": t("received"), "sla": t("sla_compliance")}
        )
    context["specs"] = specs
    if churn.ok:
        ids = [str(i["customer_id"]) for i in churn.body.get("items", [])]
        names = await customer_names(request, user, ids)
        context["churn_rows"] = figures.churn_rows(churn.body, names)
    if staff.ok:
        context["staff_rows"] = figures.staff_rows(staff.body)
    return render(request, "dashboard.html", context)


def report_state(answer: Answer, lang: str) -> dict[str, Any]:
    """The report panel's state. Loaded on its own, so unreachable, timed out and 5xx are
    errors that say which; only a 404 (analytics without the route) is "not available yet"."""
    if answer.timed_out:
        return {"state": "error", "detail": translate(lang, "upstream_timed_out")}
    if answer.status is None:
        return {"state": "error", "detail": translate(lang, "upstream_unreachable")}
    if answer.status >= 500 and answer.status != 501:
        return {"state": "error", "detail": answer.detail}
    return panel(answer)


async def _management_report(request: Request, user: User) -> tuple[dict[str, Any], int]:
    """The month's management report as the panel's template context, and the status to send."""
    answer = await _upstream(request).get(
        "analytics", "/reports/management", user.token, params={"period": "month"}
    )
    context: dict[str, Any] = {"report": report_state(answer, language(request))}
    if answer.ok:
        context["report_view"] = figures.management_report(answer.body)
    return context, 502 if context["report"]["state"] == "error" else 200


@router.get("/dashboard/report/panel", include_in_schema=False)
async def report_panel(request: Request) -> Response:
    """The dashboard's management report panel, an HTML fragment its script inserts."""
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    if not user.can("analytics:read"):
        forbidden = {"report": {"state": "forbidden"}}
        return render(request, "report_panel.html", forbidden, status_code=403, fragment=True)
    context, status = await _management_report(request, user)
    return render(request, "report_panel.html", context, status_code=status, fragment=True)


@router.get("/dashboard/report", include_in_schema=False)
async def report_page(request: Request) -> Response:
    """The management report as a page: the dashboard's link to it works without JavaScript."""
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    if not user.can("analytics:read"):
        return render(request, "error.html", {"message_key": "forbidden"}, status_code=403)
    context, status = await _management_report(request, user)
    return render(request, "report.html", context, status_code=status)


# -- the agent's workspace ---------------------------------------------------------------------


@router.get("/workspace", include_in_schema=False)
async def workspace(request: Request) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    settings = _settings(request)
    upstream = _upstream(request)
    agenda, cases = await asyncio.gather(
        upstream.get(
            "interactions", "/agenda", user.token, params={"tz": settings.timezone, "days": 7}
        ),
        upstream.get(
            "complaints",
            "/complaints",
            user.token,
            params=[
                ("assignee", user.subject),
                *(("status", s) for s in OPEN_COMPLAINT),
                ("limit", 50),
            ],
        ),
    )
    ids: list[str] = []
    if agenda.ok:
        for group in ("overdue", "due_today", "upcoming"):
            ids += [str(f["customer_id"]) for f in agenda.body.get(group, [])]
    if cases.ok:
        ids += [str(c["customer_id"]) for c in cases.body.get("items", [])]
    names = await customer_names(request, user, ids)
    return render(
        request,
        "workspace.html",
        {
            "agenda": panel(agenda),
            "cases": panel(cases),
            "names": names,
            "revisit_outcomes": REVISIT_OUTCOMES,
        },
    )


@router.get("/customers", include_in_schema=False)
async def customers(request: Request, q: str | None = None) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    result = None
    if q:
        answer = await _upstream(request).get(
            "profiles", "/customers", user.token, params={"q": q[:200], "limit": 50}
        )
        result = panel(answer)
    return render(request, "customers.html", {"q": q or "", "result": result})


@router.get("/customers/{customer_id}", include_in_schema=False)
async def customer(request: Request, customer_id: CustomerId) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    upstream = _upstream(request)
    token, cid = user.token, str(customer_id)
    profile, insights, timeline, complaints, loyalty = await asyncio.gather(
        upstream.get("profiles", f"/customers/{cid}", token),
        upstream.get("analytics", f"/customers/{cid}/insights", token),
        upstream.get("interactions", f"/customers/{cid}/timeline", token, params={"limit": 20}),
        upstream.get("complaints", "/complaints", token, params={"customer_id": cid, "limit": 20}),
        upstream.get("loyalty", f"/members/{cid}", token),
    )
    if profile.status == 404:
        return render(request, "error.html", {"message_key": "not_found"}, status_code=404)
    return render(
        request,
        "customer.html",
        {
            "customer_id": cid,
            "profile": panel(profile),
            "insights": panel(insights),
            "timeline": panel(timeline),
            "complaints": panel(complaints),
            "loyalty": panel(loyalty),
            "channels": CHANNELS,
            "revisit_outcomes": REVISIT_OUTCOMES,
            "form_key": str(uuid.uuid4()),
            "now_local": datetime.now(request.app.state.zone).strftime("%Y-%m-%dT%H:%M"),
        },
    )


# -- quick actions: forms posted through the console to the APIs -------------------------------


def _back(request: Request, form: Any, default: str) -> str:
    return _local_path(str(form.get("next") or ""), default)


def _report(request: Request, answer: Answer, done_key: str) -> None:
    if answer.ok:
        flash(request, done_key, "ok")
    else:
        flash(request, "action_failed", "error", answer.detail or str(answer.status))


@router.post("/actions/followups/{followup_id}/complete", include_in_schema=False)
async def complete_followup(request: Request, followup_id: uuid.UUID) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    check_csrf(request, form)
    answer = await _upstream(request).post(
        "interactions", f"/followups/{followup_id}/complete", user.token, json={}
    )
    _report(request, answer, "completed")
    return RedirectResponse(_back(request, form, "/workspace"), 303)


@router.post("/actions/complaints/{complaint_id}/transition", include_in_schema=False)
async def move_complaint(request: Request, complaint_id: uuid.UUID) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    check_csrf(request, form)
    body: dict[str, Any] = {"to_status": str(form.get("to_status") or "")}
    for field in ("note", "resolution", "revisit_outcome"):
        value = str(form.get(field) or "").strip()
        if value:
            body[field] = value
    headers = {}
    version = str(form.get("version") or "")
    if version.isdigit():
        headers["If-Match"] = f'"{version}"'
    answer = await _upstream(request).post(
        "complaints",
        f"/complaints/{complaint_id}/transitions",
        user.token,
        json=body,
        headers=headers,
    )
    _report(request, answer, "moved")
    return RedirectResponse(_back(request, form, "/workspace"), 303)


@router.post("/actions/customers/{customer_id}/interactions", include_in_schema=False)
async def log_interaction(request: Request, customer_id: CustomerId) -> Response:
    user = _signed_in(request)
    if isinstance(user, Response):
        return user
    form = await request.form()
    check_csrf(request, form)
    zone = request.app.state.zone
    raw_time = str(form.get("occurred_at") or "")
    try:
        occurred = datetime.fromisoformat(raw_time).replace(tzinfo=zone) if raw_time else None
    except ValueError:
        occurred = None
    body: dict[str, Any] = {
        "customer_id": str(customer_id),
        "channel": str(form.get("channel") or ""),
        "direction": str(form.get("direction") or ""),
        "occurred_at": (occurred or datetime.now(UTC)).isoformat(),
        "agent_id": user.subject,
    }
    for field in ("subject", "summary", "outcome"):
        value = str(form.get(field) or "").strip()
        if value:
            body[field] = value
    # One key per form shown: a double submit stores the interaction once.
    key = str(form.get("idempotency_key") or "") or str(uuid.uuid4())
    answer = await _upstream(request).post(
        "interactions", "/interactions", user.token, json=body, headers={"Idempotency-Key": key}
    )
    _report(request, answer, "logged")
    return RedirectResponse(_back(request, form, f"/customers/{customer_id}"), 303)
