"""Messages as a caller may see them: read models, masked without `pii:read`."""

from __future__ import annotations

from collections.abc import Sequence

from services.outreach.models import Message, MessageState
from services.outreach.schemas import MessageRead, StateRead
from shared.context import RequestContext


def message(ctx: RequestContext, row: Message, states: Sequence[MessageState] = ()) -> MessageRead:
    read = MessageRead.model_validate(
        {
            **{name: getattr(row, name) for name in MessageRead.model_fields if name != "history"},
            "history": [StateRead(status=s.status, reason=s.reason, at=s.at) for s in states],
        }
    )
    return ctx.mask("message", read)


async def shown(
    ctx: RequestContext, rows: Sequence[Message], states: Sequence[MessageState] = ()
) -> list[MessageRead]:
    """The rows as this caller may see them; unmasked reads go to the audit log."""
    by_message: dict[object, list[MessageState]] = {}
    for state in states:
        by_message.setdefault(state.message_id, []).append(state)
    await ctx.audit_reads(("message", row, row.customer_id) for row in rows)
    return [message(ctx, row, by_message.get(row.id, [])) for row in rows]
