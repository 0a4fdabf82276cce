"""One privacy module: a service declares its personal-data fields once, and masking, audit of
reads and changes, and the sealing of stored replies follow from that declaration.

    PRIVACY = Privacy(
        audit_log,
        {
            "interaction": {"contact_person": REDACT, "subject": REDACT, "summary": REDACT},
            "survey": {"comment": REDACT},
        },
    )

- **Masking**: `ctx.mask("interaction", read)` returns the read model with every declared field
  replaced by its rule's masked value when the caller lacks `pii:read` (one rule per field:
  `REDACT` → "[redacted]", `EMAIL`, `PHONE`, `PERSON_NAME`, `DROP` → None, `EMPTY_LIST`,
  `EMPTY_DICT`, or any function).
- **Audit of reads**: `ctx.audit_reads(records)` writes one `read_pii` entry per customer and
  resource, naming the declared fields the records actually carried; only for callers with
  `pii:read` (the others never see personal data).
- **Audit of changes**: `ctx.audit_change(...)`; the request context adds a generic entry for a
  write request that recorded none (see `shared.context`).
- **Sealing at rest**: columns are `shared.crypto.EncryptedText`; stored replies go through
  `shared.idempotency`, which seals them whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared import crypto
from shared.audit import AUDIT_FROM_JSON_TEXT, audit_json

if TYPE_CHECKING:
    from shared.context import RequestContext

MaskRule = Callable[[Any, Any], Any]  # (value, the whole model) -> masked value

REDACTED = "[redacted]"


def REDACT(value: Any, _: Any) -> Any:
    return None if value is None else REDACTED


def DROP(value: Any, _: Any) -> Any:
    return None


def EMPTY_LIST(value: Any, _: Any) -> Any:
    return []


def EMPTY_DICT(value: Any, _: Any) -> Any:
    return {}


def EMAIL(value: Any, _: Any) -> Any:
    return crypto.mask_email(value)


def PHONE(value: Any, _: Any) -> Any:
    return crypto.mask_phone(value)


def mask_name(kind: str | None, name: str | None) -> str | None:
    """A person's name is personal data (shown as its initial); an organisation's is not."""
    if kind == "organisation" or not name:
        return name
    return f"{name[:1]}***"


def PERSON_NAME(value: Any, model: Any) -> Any:
    """A name masked unless the model's `kind` says it is an organisation's."""
    return mask_name(_get(model, "kind") or "person", value)


def _get(model: Any, name: str) -> Any:
    if type(model) is dict:  # the common case, without the ABC check
        return model.get(name)
    return model.get(name) if isinstance(model, Mapping) else getattr(model, name, None)


class Privacy:
    """A service's personal-data declaration: resource -> {field: mask rule}."""

    def __init__(
        self,
        audit_table: sa.Table | None,
        fields: Mapping[str, Mapping[str, MaskRule]],
        *,
        customer_key: str = "customer_id",
    ) -> None:
        self.audit_table = audit_table
        self.fields = {resource: dict(rules) for resource, rules in fields.items()}
        self.customer_key = customer_key

    def fields_of(self, resource: str) -> list[str]:
        return list(self.fields.get(resource, {}))

    # -- masking ----------------------------------------------------------------------------

    def masked(self, resource: str, model: Any) -> Any:
        """`model` (a pydantic model or a dict) with every declared field masked."""
        rules = self.fields[resource]
        update = {name: rule(_get(model, name), model) for name, rule in rules.items()}
        if isinstance(model, Mapping):
            return {**model, **{k: v for k, v in update.items() if k in model}}
        present = {k: v for k, v in update.items() if k in type(model).model_fields}
        return model.model_copy(update=present)

    def view(self, ctx: RequestContext, resource: str, model: Any) -> Any:
        return model if ctx.can_read_pii else self.masked(resource, model)

    # -- audit ------------------------------------------------------------------------------

    def _entry(self, ctx: RequestContext, action: str, resource: str) -> dict[str, Any]:
        return {
            "actor": ctx.principal.subject,
            "role": ctx.principal.role,
            "action": action,
            "resource": resource,
            "purpose": ctx.purpose,
            "request_id": ctx.request_id,
        }

    def change_entries(
        self,
        ctx: RequestContext,
        action: str,
        resource: str,
        resource_id: Any = None,
        customer_id: Any = None,
        fields: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """The entries `record` writes: one per customer."""
        customers = (
            [None]
            if customer_id is None
            else list(
                dict.fromkeys(
                    str(c)
                    for c in (
                        customer_id
                        if isinstance(customer_id, list | tuple | set | frozenset)
                        else [customer_id]
                    )
                )
            )
        )
        common = {**self._entry(ctx, action, resource), "fields": sorted(fields)}
        return [
            {
                **common,
                "customer_id": cid,
                "resource_id": (str(resource_id) if resource_id is not None else cid),
            }
            for cid in customers
        ]

    async def record(
        self,
        ctx: RequestContext,
        action: str,
        resource: str,
        *,
        resource_id: Any = None,
        customer_id: Any = None,
        fields: Iterable[str] = (),
    ) -> None:
        """One entry per customer (several ids: one statement), in the caller's transaction."""
        if self.audit_table is None:
            return
        entries = self.change_entries(ctx, action, resource, resource_id, customer_id, fields)
        if entries:
            await ctx.session.execute(AUDIT_FROM_JSON_TEXT, {"entries": audit_json(entries)})

    async def record_reads(
        self, ctx: RequestContext, records: Iterable[tuple[str, Any, Any]]
    ) -> None:
        """`read_pii` entries for (resource, record, customer id) triples: one per customer and
        resource, listing the ids of the records that carried personal data and those fields."""
        entries = self.read_entries(ctx, records)
        if entries:
            await ctx.session.execute(AUDIT_FROM_JSON_TEXT, {"entries": audit_json(entries)})

    def read_entries(
        self, ctx: RequestContext, records: Iterable[tuple[str, Any, Any]]
    ) -> list[dict[str, Any]]:
        """The entries `record_reads` writes."""
        if self.audit_table is None or not ctx.can_read_pii:
            return []
        ids: dict[tuple[str, str], list[str]] = defaultdict(list)
        fields: dict[tuple[str, str], set[str]] = defaultdict(set)
        for resource, record, customer_id in records:
            present = [f for f in self.fields[resource] if _get(record, f) not in (None, [], {})]
            if present:
                key = (resource, str(customer_id))
                ids[key].append(str(_get(record, "id")))
                fields[key].update(present)
        return [
            {
                **self._entry(ctx, "read_pii", resource),
                "resource_id": ",".join(dict.fromkeys(record_ids)),
                "customer_id": customer_id,
                "fields": sorted(fields[(resource, customer_id)]),
            }
            for (resource, customer_id), record_ids in ids.items()
        ]
