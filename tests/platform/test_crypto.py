"""Re-encryption to the newest key, against the real PostgreSQL (the rest: tests/unit)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared import crypto
from shared.db import create_engine
from tests.conftest import settings_for
from tests.unit.test_crypto import key, ring


async def test_reencrypt_moves_every_value_to_the_newest_key(fresh_database: Any) -> None:
    url = await fresh_database("analytics")
    engine = create_engine(settings_for(url))
    metadata = sa.MetaData()
    table = sa.Table(
        "people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", crypto.EncryptedText("people.email")),
    )
    old, new = key(), key()
    previous = crypto._keyring
    try:
        crypto.configure(ring(f"old:{old}"))
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                sa.insert(table), [{"id": i, "email": f"p{i}@x.io"} for i in range(5)]
            )
            raw = await conn.scalar(sa.text("SELECT email FROM people WHERE id = 1"))
        assert raw.startswith("k1.old.") and "p1@x.io" not in raw

        crypto.configure(ring(f"new:{new},old:{old}"))
        assert await crypto.reencrypt(engine, metadata) == 5
        async with engine.connect() as conn:
            raws = (await conn.execute(sa.text("SELECT email FROM people"))).scalars().all()
            emails = (await conn.execute(sa.select(table.c.email).order_by(table.c.id))).scalars()
            assert list(emails) == [f"p{i}@x.io" for i in range(5)]
        assert all(r.startswith("k1.new.") for r in raws)
        crypto.configure(ring(f"new:{new}"))  # the old key can now be retired
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(table.c.email).where(table.c.id == 3)) == "p3@x.io"
    finally:
        crypto._keyring = previous
        await engine.dispose()
