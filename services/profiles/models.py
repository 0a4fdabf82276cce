"""Tables owned by the profiles service."""

from shared.db import Base, new_metadata
from shared.http import idempotency_table
from shared.outbox import inbox_table, outbox_table


class Model(Base):
    __abstract__ = True
    metadata = new_metadata()


metadata = Model.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
