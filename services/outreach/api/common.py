"""What every outreach route asks for: the caller's request context with its scope."""

from typing import Annotated

from shared.context import RequestContext, context

Reader = Annotated[RequestContext, context("outreach:read")]
Writer = Annotated[RequestContext, context("outreach:write")]
# Pages anyone may open: the survey page and unsubscribe link (signed tokens), provider
# callbacks (signed bodies). Their writes are audited under these subjects.
SurveyPage = Annotated[RequestContext, context(anonymous="public:survey-page")]
UnsubscribePage = Annotated[RequestContext, context(anonymous="public:unsubscribe-link")]
ProviderCall = Annotated[RequestContext, context(anonymous="provider:callback")]
