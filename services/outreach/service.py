"""The rules of the outreach service: queue a message, deliver it (or say why not), record what
the provider reports, run the playbooks the events trigger, and the survey page's answers.

Every state change of a message is recorded in its history and published (`message.<status>`)
in the caller's transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from services.outreach import channels, links, peers, policy
from services.outreach import repository as repo
from services.outreach.config import Settings
from services.outreach.errors import (
    CustomerErased,
    InvalidPreference,
    InvalidTemplate,
    MessageNotFound,
    PurposeMismatch,
    TemplateNotFound,
    UnknownTemplate,
)
from services.outreach.models import Customer, Message, SurveyLink, Template
from services.outreach.schemas import (
    MessageCreate,
    PreferencesWrite,
    ProviderCallback,
    TemplatePreview,
    TemplateWrite,
)
from services.outreach.templating import (
    BUILT_IN,
    PURPOSES,
    SAMPLE_VARIABLES,
    Rendered,
    RenderError,
    TemplateText,
    check,
    render,
)
from shared.context import RequestContext
from shared.contracts.outreach import BY_STATUS
from shared.http import check_if_match
from shared.problems import NotFound

TERMINAL = ("delivered", "bounced", "failed", "suppressed")


def settings_of(ctx: RequestContext) -> Settings:
    return cast(Settings, ctx.settings)


# -- state changes ------------------------------------------------------------------------------


async def _move(
    ctx: RequestContext,
    message: Message,
    status: str,
    reason: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Put the message in `status`, record it in its history and publish it."""
    now = ctx.now()
    message.status = status
    message.reason = reason
    message.updated_at = now
    message.next_attempt_at = next_attempt_at if status in ("queued", "deferred") else None
    await repo.add_state(ctx.session, message.id, status, reason, now)
    await ctx.outbox.emit(
        ctx.session,
        BY_STATUS[status](
            customer_id=message.customer_id,
            occurred_at=now,
            message_id=message.id,
            purpose=message.purpose,
            channel=message.channel,
            template_key=message.template_key,
            status=status,
            reason=reason,
            attempts=message.attempts,
        ),
    )
    await ctx.session.flush()


# -- templates ----------------------------------------------------------------------------------


def _text(row: Template) -> TemplateText:
    return TemplateText(
        row.key, row.locale, row.purpose, row.subject, row.body, row.sms_body, row.version
    )


async def effective_template(
    ctx: RequestContext, key: str, locale: str, version: int | None = None
) -> TemplateText | None:
    """The newest stored version of the template for `locale` (or `version`), else built-in."""
    if version != 0:
        row = await repo.template(ctx.session, key, locale, version)
        if row is not None:
            return _text(row)
        if version is not None:
            return None
    return BUILT_IN.get((key, locale))


async def template_purpose(ctx: RequestContext, key: str) -> str | None:
    if key in PURPOSES:
        return PURPOSES[key]
    rows = await repo.template_versions(ctx.session, key)
    return rows[0].purpose if rows else None


async def put_template(
    ctx: RequestContext, key: str, locale: str, data: TemplateWrite
) -> TemplateText:
    """Store a new version of a template (the newest is the one used)."""
    purpose = await template_purpose(ctx, key)
    if purpose is None and data.purpose is None:
        raise PurposeMismatch("A new template needs its `purpose` (transactional or marketing)")
    if purpose is not None and data.purpose is not None and data.purpose != purpose:
        raise PurposeMismatch(
            f"Template {key} is {purpose}; its purpose cannot change", purpose=purpose
        )
    for name, source in (
        ("subject", data.subject),
        ("body", data.body),
        ("sms_body", data.sms_body),
    ):
        if source is not None:
            try:
                check(source)
            except RenderError as exc:
                raise InvalidTemplate(f"{name}: {exc}", field=name) from exc
    await repo.lock_template_key(ctx.session, key, locale)
    newest = await repo.template(ctx.session, key, locale)
    row = Template(
        key=key,
        locale=locale,
        version=(newest.version if newest else 0) + 1,
        purpose=purpose or data.purpose,
        subject=data.subject,
        body=data.body,
        sms_body=data.sms_body,
        created_by=ctx.actor,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    await ctx.audit_change("create", "template", f"{key}/{locale}/{row.version}")
    return _text(row)


async def template_versions(ctx: RequestContext, key: str) -> list[tuple[TemplateText, Any]]:
    """Every version of a template per locale, newest first, the built-in ones last."""
    rows = await repo.template_versions(ctx.session, key)
    found: list[tuple[TemplateText, Any]] = [(_text(r), r) for r in rows]
    found += [(t, None) for (k, _), t in BUILT_IN.items() if k == key]
    if not found:
        raise TemplateNotFound(f"No template {key}")
    return found


async def all_templates(ctx: RequestContext) -> list[tuple[TemplateText, Any]]:
    """The template in use per key and locale."""
    stored = {(k, loc) for k, loc, _ in await repo.template_keys(ctx.session)}
    current: list[tuple[TemplateText, Any]] = []
    for key, locale in sorted(stored | set(BUILT_IN)):
        row = await repo.template(ctx.session, key, locale)
        current.append((_text(row), row) if row is not None else (BUILT_IN[(key, locale)], None))
    return current


async def preview(
    ctx: RequestContext, key: str, data: TemplatePreview
) -> tuple[Rendered, int | None]:
    variables: dict[str, Any] = {
        "name": "王芳" if data.locale == "zh-CN" else "Wang Fang",
        **SAMPLE_VARIABLES.get(key, {}),
        **data.variables,
    }
    if data.draft is not None:
        purpose = await template_purpose(ctx, key) or data.draft.purpose or "transactional"
        text = TemplateText(
            key, data.locale, purpose, data.draft.subject, data.draft.body, data.draft.sms_body
        )
        version = None
    else:
        found = await effective_template(ctx, key, data.locale, data.version)
        if found is None:
            raise TemplateNotFound(f"No template {key} for {data.locale}")
        text, version = found, found.version
    try:
        return render(text, variables), version
    except RenderError as exc:
        raise InvalidTemplate(str(exc)) from exc


# -- queueing -----------------------------------------------------------------------------------


@dataclass
class Queued:
    message: Message | None  # None: the same message was queued before (dedupe key)


async def queue(
    ctx: RequestContext,
    *,
    customer_id: uuid.UUID,
    template_key: str,
    purpose: str,
    channel: str = "preferred",
    locale: str | None = None,
    urgent: bool = False,
    variables: dict[str, Any] | None = None,
    trigger: str = "api",
    dedupe_key: str | None = None,
    message_id: uuid.UUID | None = None,
) -> Queued:
    """Queue a message now; the dispatcher decides whether, when and how it goes out."""
    known_purpose = await template_purpose(ctx, template_key)
    if known_purpose is None:
        raise UnknownTemplate(f"No template {template_key}", template=template_key)
    if known_purpose != purpose:
        raise PurposeMismatch(
            f"Template {template_key} is {known_purpose}, not {purpose}", purpose=known_purpose
        )
    now = ctx.now()
    new_id = message_id or uuid.uuid4()
    values: dict[str, Any] = {
        "id": new_id,
        "customer_id": customer_id,
        "template_key": template_key,
        "locale": locale,
        "purpose": purpose,
        "requested_channel": channel,
        "channel": channel if channel in policy.CHANNELS else None,
        "urgent": urgent,
        "status": "queued",
        "trigger": trigger,
        "dedupe_key": dedupe_key,
        "variables": json.dumps(variables or {}, ensure_ascii=False),
        "attempts": 0,
        "next_attempt_at": now,
        "created_by": ctx.actor,
        "created_at": now,
        "updated_at": now,
    }
    if not await repo.insert_message(ctx.session, values):
        return Queued(None)
    message = await repo.message(ctx.session, new_id)
    assert message is not None
    await _move(ctx, message, "queued", None, now)
    return Queued(message)


async def create_message(ctx: RequestContext, data: MessageCreate) -> Message:
    """`POST /messages`: refused for an erased customer, else queued."""
    known = await repo.customer(ctx.session, data.customer_id)
    if known is not None and known.erased_at is not None:
        raise CustomerErased(f"Customer {data.customer_id} was erased; nothing is sent to them")
    queued = await queue(
        ctx,
        customer_id=data.customer_id,
        template_key=data.template,
        purpose=data.purpose,
        channel=data.channel,
        locale=data.locale,
        urgent=data.urgent,
        variables=dict(data.variables),
    )
    assert queued.message is not None
    await ctx.audit_change(
        "create", "message", queued.message.id, data.customer_id, ["recipient", "subject", "body"]
    )
    return queued.message


async def get_message(ctx: RequestContext, message_id: uuid.UUID) -> Message:
    message = await repo.message(ctx.session, message_id)
    if message is None:
        raise MessageNotFound(f"Message {message_id} does not exist")
    return message


# -- delivery -----------------------------------------------------------------------------------


def _address(contact: peers.Contact, channel: str) -> str | None:
    return {"email": contact.email, "sms": contact.phone, "wechat": contact.wechat_openid}.get(
        channel
    )


def _choose_channel(
    message: Message, contact: peers.Contact, customer: Customer | None
) -> tuple[str, str | None]:
    """The channel and address: the requested channel, or for `preferred` the first preference
    the customer has an address for (else e-mail, else SMS)."""
    if message.requested_channel in policy.CHANNELS:
        return message.requested_channel, _address(contact, message.requested_channel)
    first = policy.pick_channel(
        "preferred",
        customer.channel if customer else None,
        contact.preferred_channel,
        customer.preferred_channel if customer else None,
    )
    for channel in (first, "email", "sms", "wechat"):
        if address := _address(contact, channel):
            return channel, address
    return first, None


def unsubscribe_url(settings: Settings, customer_id: uuid.UUID, consent_purpose: str) -> str:
    token = links.sign(settings.link_key, "unsub", {"c": str(customer_id), "p": consent_purpose})
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


async def _retry_or_fail(ctx: RequestContext, message: Message, reason: str) -> None:
    settings = settings_of(ctx)
    if message.attempts >= settings.max_attempts:
        await _move(ctx, message, "failed", f"{reason} (gave up after {message.attempts} tries)")
        return
    wait = policy.backoff_s(max(1, message.attempts), settings.retry_base_s, settings.retry_max_s)
    await _move(ctx, message, "deferred", reason, ctx.now() + timedelta(seconds=wait))


async def deliver(ctx: RequestContext, message: Message) -> None:
    """Decide about one due message and send it, or record why not (locked by the caller)."""
    settings = settings_of(ctx)
    now = ctx.now()
    customer = await repo.customer(ctx.session, message.customer_id)
    if customer is not None and customer.erased_at is not None:
        await _move(ctx, message, "suppressed", "customer_erased")
        return
    try:
        contact = await peers.contact(settings, message.customer_id)
    except peers.PeerUnavailable:
        message.attempts += 1
        await _retry_or_fail(ctx, message, "profiles_unavailable")
        return
    except peers.PeerRefused as exc:
        await _move(ctx, message, "failed", f"profiles_refused: HTTP {exc.status}")
        return
    if contact is None:
        await _move(ctx, message, "suppressed", "unknown_customer")
        return
    if contact.erased:
        await _move(ctx, message, "suppressed", "customer_erased")
        return
    channel, address = _choose_channel(message, contact, customer)
    message.channel = channel
    if not address:
        await _move(ctx, message, "suppressed", f"no_address: no {channel} address on file")
        return
    if message.purpose == "marketing":
        consent_purpose = policy.CONSENT_PURPOSE[channel]
        current = await repo.consent(ctx.session, message.customer_id, consent_purpose)
        refusal = policy.consent_refusal(
            channel, (current.granted, current.source) if current else None
        )
        if refusal is not None:
            await _move(ctx, message, "suppressed", f"{refusal}: {consent_purpose}")
            return
        since = now - timedelta(days=settings.marketing_cap_days)
        sent = await repo.marketing_sent_since(ctx.session, message.customer_id, since, message.id)
        if policy.over_cap(sent, settings.marketing_cap):
            await _move(
                ctx,
                message,
                "suppressed",
                f"frequency_cap: {sent} marketing messages in {settings.marketing_cap_days:g} days",
            )
            return
    if not message.urgent:
        tz_name = (customer.timezone if customer else None) or contact.timezone
        tz = policy.zone(tz_name, settings.default_timezone)
        wake = policy.quiet_until(
            now,
            tz,
            policy.parse_clock(settings.quiet_start),
            policy.parse_clock(settings.quiet_end),
        )
        if wake is not None:
            if message.status != "deferred" or message.reason != "quiet_hours":
                await _move(ctx, message, "deferred", "quiet_hours", wake)
            else:
                message.next_attempt_at = wake
            return
    await _send(ctx, message, contact, customer, channel, address)


async def _send(
    ctx: RequestContext,
    message: Message,
    contact: peers.Contact,
    customer: Customer | None,
    channel: str,
    address: str,
) -> None:
    settings = settings_of(ctx)
    locale = policy.pick_locale(
        message.locale,
        customer.locale if customer else None,
        contact.language,
        customer.language if customer else None,
        default=settings.default_locale,
    )
    template = await effective_template(ctx, message.template_key, locale)
    if template is None:
        await _move(ctx, message, "failed", f"template_missing: {message.template_key}/{locale}")
        return
    variables: dict[str, Any] = json.loads(message.variables or "{}")
    variables.setdefault("name", contact.name)
    unsubscribe = None
    if message.purpose == "marketing":
        unsubscribe = unsubscribe_url(
            settings, message.customer_id, policy.CONSENT_PURPOSE[channel]
        )
        variables["unsubscribe_url"] = unsubscribe if channel == "email" else None
        if message.template_key == "winback" and settings.winback_coupon:
            variables.setdefault("coupon_code", await _coupon(settings, message))
    try:
        rendered = render(template, variables)
    except RenderError as exc:
        await _move(ctx, message, "failed", f"template_error: {exc}"[:500])
        return
    message.locale = locale
    message.template_version = template.version
    message.recipient = address
    message.subject = rendered.subject
    message.body = rendered.body if channel == "email" else rendered.short
    link = await repo.link_of_message(ctx.session, message.id)
    if link is not None:
        link.greeting_name = contact.name
        link.locale = locale
    outgoing = channels.Outgoing(
        message_id=str(message.id),
        to=address,
        subject=rendered.subject,
        body=rendered.body,
        short=rendered.short,
        unsubscribe_url=unsubscribe if channel == "email" else None,
    )
    message.attempts += 1
    try:
        if channel == "email":
            reference = await channels.send_email(
                settings.smtp, settings.mail_from, outgoing, settings.smtp_timeout_s
            )
        else:
            reference = await channels.send_via_provider(
                channel, settings.provider(channel), outgoing, settings.provider_timeout_s
            )
    except channels.Transient as exc:
        await _retry_or_fail(ctx, message, f"provider_error: {exc}"[:500])
        return
    except channels.Permanent as exc:
        await _move(ctx, message, "failed", f"provider_refused: {exc}"[:500])
        return
    message.provider_ref = reference
    message.sent_at = ctx.now()
    await _move(ctx, message, "sent", None)


async def _coupon(settings: Settings, message: Message) -> str | None:
    try:
        return await peers.issue_coupon(settings, message.customer_id, f"coupon-{message.id}")
    except (peers.PeerUnavailable, peers.PeerRefused):
        return None  # the win-back goes out without a coupon rather than not at all


async def dispatch_due(ctx: RequestContext) -> int:
    """One pass of the dispatcher: every due message of a batch decided and sent or deferred.

    The batch is locked (`SKIP LOCKED`: replicas share the work) while it is sent, and its new
    states commit together after the sends: delivery is at least once (a crash between the
    provider's acceptance and the commit sends that message again), never lost.
    """
    due = await repo.claim_due(ctx.session, ctx.now(), settings_of(ctx).dispatch_batch)
    for message in due:
        await deliver(ctx, message)
    return len(due)


# -- provider reports ---------------------------------------------------------------------------


async def provider_report(ctx: RequestContext, channel: str, report: ProviderCallback) -> Message:
    """A delivery report: `delivered`, `bounced` (also after delivered) or `failed`."""
    message = None
    if report.client_ref is not None:
        message = await repo.message(ctx.session, report.client_ref, lock=True)
    if message is None and report.id:
        message = await repo.message_by_provider_ref(ctx.session, report.id)
    if message is None or message.channel != channel:
        raise MessageNotFound("No message matches this report")
    allowed = {
        "delivered": ("sent",),
        "bounced": ("sent", "delivered"),
        "failed": ("sent", "queued", "deferred"),
    }[report.status]
    if message.status == report.status or message.status not in allowed:
        return message  # a repeated or late report changes nothing
    reason = f"{report.status}: {report.reason}" if report.reason else None
    if report.status == "delivered":
        message.delivered_at = ctx.now()
    await _move(ctx, message, report.status, reason)
    return message


# -- preferences and consent ----------------------------------------------------------------------


async def preferences(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[Customer, list[Any]]:
    row = await repo.customer(ctx.session, customer_id)
    if row is None:
        raise NotFound(f"Outreach knows nothing about customer {customer_id} yet")
    return row, list(await repo.consents_of(ctx.session, customer_id))


async def set_preferences(
    ctx: RequestContext, customer_id: uuid.UUID, data: PreferencesWrite, if_match: str | None
) -> Customer:
    """Set how the customer wants to be reached; changing existing ones needs `If-Match`."""
    if data.timezone is not None and policy.zone(data.timezone, "UTC").key != data.timezone:
        raise InvalidPreference(f"Unknown time zone {data.timezone!r}", field="timezone")
    existed = await repo.customer(ctx.session, customer_id) is not None
    row = await repo.ensure_customer(ctx.session, customer_id)
    if row.erased_at is not None:
        raise CustomerErased(f"Customer {customer_id} was erased")
    if existed:
        check_if_match(if_match, row.version)
    row.timezone, row.locale, row.channel = data.timezone, data.locale, data.channel
    row.version += 1
    row.updated_at = ctx.now()
    await ctx.session.flush()
    await ctx.audit_change(
        "update", "preferences", customer_id, customer_id, ["timezone", "locale", "channel"]
    )
    return row


async def consent_changed(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    purpose: str,
    granted: bool,
    source: str,
    occurred_at: datetime,
) -> None:
    await repo.set_consent(ctx.session, customer_id, purpose, granted, source, occurred_at)


# -- the unsubscribe link -------------------------------------------------------------------------


def read_unsubscribe(settings: Settings, token: str) -> tuple[uuid.UUID, str]:
    claims = links.verify(settings.link_key, "unsub", token)
    try:
        return uuid.UUID(str(claims["c"])), str(claims["p"])
    except (KeyError, ValueError) as exc:
        raise links.BadToken("malformed") from exc


async def unsubscribe(ctx: RequestContext, token: str) -> str:
    """Withdraw the link's consent here at once and in profiles (now, or by a retried task)."""
    settings = settings_of(ctx)
    customer_id, purpose = read_unsubscribe(settings, token)
    now = ctx.now()
    await repo.set_consent(
        ctx.session, customer_id, purpose, False, "unsubscribe_link", now, supersede=True
    )
    key = f"unsubscribe-{uuid.uuid4()}"
    try:
        await peers.withdraw_consent(settings, customer_id, purpose, key)
    except (peers.PeerUnavailable, peers.PeerRefused) as exc:
        await repo.insert_task(
            ctx.session,
            {
                "id": uuid.uuid4(),
                "kind": "withdraw_consent",
                "customer_id": customer_id,
                "dedupe_key": key,
                "payload": {"purpose": purpose, "key": key},
                "status": "pending",
                "attempts": 1,
                "next_attempt_at": now + timedelta(seconds=settings.retry_base_s),
                "last_error": str(exc)[:500],
                "created_at": now,
            },
        )
    await ctx.audit_change("update", "consent", purpose, customer_id, ["granted"])
    return purpose


# -- survey links and the survey page -----------------------------------------------------------


def survey_token(settings: Settings, link_id: uuid.UUID) -> str:
    return links.sign(settings.link_key, "survey", {"l": str(link_id)})


@dataclass
class LinkState:
    state: str  # "open", "used", "expired", "invalid"
    link: SurveyLink | None = None


async def open_link(ctx: RequestContext, token: str, lock: bool = False) -> LinkState:
    try:
        claims = links.verify(settings_of(ctx).link_key, "survey", token)
        link_id = uuid.UUID(str(claims["l"]))
    except (links.BadToken, KeyError, ValueError):
        return LinkState("invalid")
    link = await repo.link(ctx.session, link_id, lock=lock)
    if link is None:
        return LinkState("invalid")
    if link.used_at is not None:
        return LinkState("used", link)
    if link.expires_at <= ctx.now():
        return LinkState("expired", link)
    return LinkState("open", link)


async def answer_survey(ctx: RequestContext, token: str, answer: dict[str, Any]) -> LinkState:
    """Post the answer to interactions as the invitation's survey, once; the link is used up.

    Raises `peers.PeerUnavailable` when interactions cannot take it now (the link stays open).
    """
    found = await open_link(ctx, token, lock=True)
    if found.state != "open" or found.link is None:
        return found
    link = found.link
    body = {
        "customer_id": str(link.customer_id),
        "invitation_id": str(link.invitation_id),
        "channel": "web",
        **answer,
    }
    try:
        survey = await peers.submit_survey(settings_of(ctx), body, key=f"survey-link-{link.id}")
    except peers.PeerRefused as exc:
        if exc.status == 409:  # answered already (through another path)
            link.used_at = ctx.now()
            return LinkState("used", link)
        raise
    link.used_at = ctx.now()
    link.survey_id = uuid.UUID(survey["id"])
    await ctx.session.flush()
    await ctx.audit_change("create", "survey_answer", link.id, link.customer_id, ["comment"])
    return LinkState("answered", link)


# -- playbooks (from events) --------------------------------------------------------------------


async def survey_invited(
    ctx: RequestContext,
    event_type: str,
    customer_id: uuid.UUID,
    invitation_id: uuid.UUID,
    context_type: str | None,
    channel: str | None,
) -> None:
    settings = settings_of(ctx)
    now = ctx.now()
    link = SurveyLink(
        id=uuid.uuid4(),
        invitation_id=invitation_id,
        customer_id=customer_id,
        message_id=uuid.uuid4(),
        context_type=context_type,
        expires_at=now + timedelta(days=settings.survey_link_ttl_days),
        created_at=now,
    )
    if not await repo.insert_link(ctx.session, link):
        return  # this invitation has its link and message already
    url = f"{settings.public_base_url.rstrip('/')}/s/{survey_token(settings, link.id)}"
    await queue(
        ctx,
        customer_id=customer_id,
        template_key="survey_invitation",
        purpose="transactional",
        channel=channel if channel in policy.CHANNELS else "preferred",
        variables={"survey_url": url, "expires_on": link.expires_at.date().isoformat()},
        trigger=event_type,
        dedupe_key=f"survey:{invitation_id}",
        message_id=link.message_id,
    )


def case_reference(data: dict[str, Any]) -> str:
    """The reference a customer quotes: the case's own number if the event has one."""
    for name in ("reference", "case_number", "reference_number"):
        if data.get(name):
            return str(data[name])
    case_id = str(data.get("case_id") or data.get("complaint_id") or "")
    return f"C-{case_id.replace('-', '')[:8].upper()}" if case_id else "-"


async def case_notice(
    ctx: RequestContext, event_type: str, event_id: str, kind: str, data: dict[str, Any]
) -> None:
    """A transactional notice that the customer's case was acknowledged or resolved."""
    case_id = data.get("case_id") or data.get("complaint_id") or event_id
    variables = {"reference": case_reference(data)}
    outcome = data.get("outcome_summary") or data.get("outcome")
    if kind == "resolved" and outcome:
        variables["outcome"] = str(outcome)[:500]
    await queue(
        ctx,
        customer_id=uuid.UUID(str(data["customer_id"])),
        template_key=f"case_{kind}",
        purpose="transactional",
        variables=variables,
        trigger=event_type,
        dedupe_key=f"case_{kind}:{case_id}:{data.get('occurred_at', event_id)}",
    )


async def churn_risk_changed(
    ctx: RequestContext, event_id: str, customer_id: uuid.UUID, level: str, reasons: list[str]
) -> None:
    """Churn risk becoming high starts the win-back playbook: a follow-up task for the owner in
    interactions and a win-back message (marketing; a coupon with OUTREACH_WINBACK_COUPON)."""
    settings = settings_of(ctx)
    row = await repo.ensure_customer(ctx.session, customer_id)
    was = row.churn_level
    row.churn_level = level
    if level != "high" or was == "high" or not settings.winback or row.erased_at is not None:
        return
    now = ctx.now()
    due = now + timedelta(days=settings.winback_followup_days)
    note = "Win-back: churn risk is high" + (f" ({'; '.join(reasons)[:400]})" if reasons else "")
    await repo.insert_task(
        ctx.session,
        {
            "id": uuid.uuid4(),
            "kind": "winback_followup",
            "customer_id": customer_id,
            "dedupe_key": f"winback:{event_id}",
            "payload": {
                "customer_id": str(customer_id),
                "kind": "care",
                "due_at": due.isoformat(),
                "assignee_id": row.owner_id,
                "note": note,
            },
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    await queue(
        ctx,
        customer_id=customer_id,
        template_key="winback",
        purpose="marketing",
        trigger="kehu.customer.churn_risk_changed.v1",
        dedupe_key=f"winback:{event_id}",
    )


async def loyalty_notice(
    ctx: RequestContext, event_type: str, event_id: str, kind: str, data: dict[str, Any]
) -> None:
    if not settings_of(ctx).loyalty_notices:
        return
    if kind == "level_changed":
        variables = {"level": str(data.get("level") or data.get("new_level") or "")}
    else:
        expires = data.get("expires_on") or data.get("expires_at") or ""
        variables = {"points": data.get("points", ""), "expires_on": str(expires)[:10]}
    await queue(
        ctx,
        customer_id=uuid.UUID(str(data["customer_id"])),
        template_key=f"loyalty_{kind}",
        purpose="transactional",
        variables=variables,
        trigger=event_type,
        dedupe_key=f"loyalty:{event_id}",
    )


async def greetings_due(ctx: RequestContext) -> int:
    """Queue today's birthday and festival greetings (in each customer's time zone), once each."""
    settings = settings_of(ctx)
    if not settings.greetings:
        return 0
    now = ctx.now()
    around = [(now + timedelta(days=d)).date() for d in (-1, 0, 1)]
    queued = 0
    after: uuid.UUID | None = None
    while rows := await repo.birthday_customers(
        ctx.session, [(d.month, d.day) for d in around], after, 500
    ):
        for row in rows:
            today = now.astimezone(policy.zone(row.timezone, settings.default_timezone)).date()
            if policy.occurs_on(row.important_dates, "birthday", today):
                done = await queue(
                    ctx,
                    customer_id=row.customer_id,
                    template_key="birthday_greeting",
                    purpose="marketing",
                    trigger="birthday",
                    dedupe_key=f"birthday:{row.customer_id}:{today.year}",
                )
                queued += done.message is not None
        after = rows[-1].customer_id
    for festival in settings.festivals:
        if festival.date not in around:
            continue
        after = None
        while rows := await repo.live_customers(ctx.session, after, 500):
            for row in rows:
                today = now.astimezone(policy.zone(row.timezone, settings.default_timezone)).date()
                if today != festival.date:
                    continue
                done = await queue(
                    ctx,
                    customer_id=row.customer_id,
                    template_key="festival_greeting",
                    purpose="marketing",
                    variables={"festival_zh": festival.name_zh, "festival_en": festival.name_en},
                    trigger=f"festival:{festival.key}",
                    dedupe_key=f"festival:{festival.key}:{festival.date}:{row.customer_id}",
                )
                queued += done.message is not None
            after = rows[-1].customer_id
    return queued


async def run_tasks(ctx: RequestContext) -> int:
    """Carry out due playbook tasks in other services; a failure is retried with back-off."""
    settings = settings_of(ctx)
    tasks = await repo.claim_tasks(ctx.session, ctx.now(), settings.dispatch_batch)
    for task in tasks:
        key = f"outreach-task-{task.id}"
        try:
            if task.kind == "winback_followup":
                answer = await peers.create_followup(settings, task.payload, key)
                task.result_ref = str(answer.get("id"))
            elif task.kind == "withdraw_consent":
                await peers.withdraw_consent(
                    settings, task.customer_id, task.payload["purpose"], task.payload["key"]
                )
        except peers.PeerUnavailable as exc:
            task.attempts += 1
            task.last_error = str(exc)[:500]
            wait = policy.backoff_s(task.attempts, settings.retry_base_s, settings.retry_max_s)
            task.next_attempt_at = ctx.now() + timedelta(seconds=wait)
            continue
        except peers.PeerRefused as exc:
            task.status, task.last_error = "failed", f"HTTP {exc.status}: {exc.body}"[:500]
            continue
        task.status, task.done_at = "done", ctx.now()
    await ctx.session.flush()
    return len(tasks)


# -- customers from profiles' events ------------------------------------------------------------


async def customer_dimensions(
    ctx: RequestContext, customer_id: uuid.UUID, dimensions: dict[str, Any], occurred_at: datetime
) -> None:
    row = await repo.ensure_customer(ctx.session, customer_id)
    if row.dimensions_at is not None and row.dimensions_at > occurred_at:
        return
    row.owner_id = dimensions.get("owner_id")
    row.language = dimensions.get("language")
    row.preferred_channel = dimensions.get("preferred_channel")
    row.status = dimensions.get("status") or "active"
    row.important_dates = [] if row.erased_at else list(dimensions.get("important_dates") or [])
    row.dimensions_at = occurred_at
    await ctx.session.flush()


async def customer_archived(ctx: RequestContext, customer_id: uuid.UUID) -> None:
    row = await repo.ensure_customer(ctx.session, customer_id)
    row.status = "archived"


async def customer_merged(
    ctx: RequestContext, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> None:
    row = await repo.ensure_customer(ctx.session, duplicate_id)
    row.merged_into = survivor_id


async def erase_customer(ctx: RequestContext, customer_id: uuid.UUID, at: datetime) -> None:
    """`customer.erased`: nothing more goes out; addresses, texts and mail are scrubbed."""
    for message in await repo.pending_of(ctx.session, customer_id):
        await _move(ctx, message, "suppressed", "customer_erased")
    await repo.erase(ctx.session, customer_id, at)
    await ctx.audit_change("erase", "customer", customer_id, customer_id)
