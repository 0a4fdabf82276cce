"""What every loyalty route asks for: the caller's request context with its scope."""

from typing import Annotated

from shared.context import RequestContext, context

Reader = Annotated[RequestContext, context("loyalty:read")]
Writer = Annotated[RequestContext, context("loyalty:write")]
# The programme's rules (levels, rewards) are set by managers, not agents.
Manager = Annotated[RequestContext, context("loyalty:manage")]
