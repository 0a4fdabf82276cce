"""What every complaints route asks for: the caller's request context with its scope."""

from typing import Annotated

from shared.context import RequestContext, context

Reader = Annotated[RequestContext, context("complaints:read")]
Writer = Annotated[RequestContext, context("complaints:write")]
