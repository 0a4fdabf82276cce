"""`make demo`'s loader against the real services with a tight rate limit: it waits out their
429s and stores the whole data set; a second run stores nothing twice and says so."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from bench.datagen import customers
from bench.demo import Sender, Tally, load
from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app as profiles_app
from shared.auth import issue_token
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import serve

COUNT = 5
# Well under what the loader asks for: the services answer 429 with Retry-After.
LIMITED = {"outbox_poll_interval_s": 0.2, "rate_limit_per_s": 10, "rate_limit_burst": 3}


async def test_the_demo_loader_waits_out_rate_limits_and_reports_what_was_stored() -> None:
    seed = random.randrange(10**6, 10**7)  # refs and e-mails of its own in the shared databases
    now = datetime.now(UTC).replace(microsecond=0)
    plan = list(customers(COUNT, seed, now))
    planned = {
        "customers": COUNT,
        "purchases": sum(len(c.purchases) for c in plan),
        "interactions": sum(len(c.interactions) for c in plan),
        "surveys": sum(len(c.surveys) for c in plan),
        "complaints": sum(len(c.complaints) for c in plan),
    }
    planned = {kind: n for kind, n in planned.items() if n}
    headers = auth(issue_token(ServiceSettings(), "admin", subject=f"demo-test-{seed}"))
    async with AsyncExitStack() as stack:
        clients = {}
        for name, app in (
            ("profiles", profiles_app(ProfilesSettings(**LIMITED))),
            ("interactions", interactions_app(InteractionsSettings(**LIMITED))),
            ("complaints", complaints_app(ComplaintsSettings(**LIMITED))),
        ):
            generator = serve(app)
            clients[name] = await generator.__anext__()
            clients[name].headers.update(headers)
            stack.push_async_callback(generator.aclose)

        first = await load(clients, COUNT, seed, Sender(Tally()), now)
        assert not first.failed, first.lines()
        assert first.retried["429"] > 0, "the services' rate limit was never reached"
        assert {k: first.created[k] for k in planned} == planned, first.lines()

        again = await load(clients, COUNT, seed, Sender(Tally()), now)
        assert not again.failed, again.lines()
        assert not +again.created, again.lines()  # nothing stored twice
        assert {k: again.existing[k] for k in planned} == planned, again.lines()
        assert f"customers: {COUNT} stored (0 new, {COUNT} already there)" in again.lines()
