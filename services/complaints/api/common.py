"""What every service-desk route asks for (the caller's request context with its scope), and
the two resources the case sub-resources are mounted under: `/cases` (every type) and
`/complaints` (the complaint-type view kept for existing clients)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel

from services.complaints import views
from services.complaints.models import Case
from services.complaints.schemas import (
    CaseNoteCreate,
    CaseRead,
    CaseTransitionRequest,
    ComplaintRead,
    NoteCreate,
    TransitionRequest,
)
from shared.context import RequestContext, context

Reader = Annotated[RequestContext, context("complaints:read")]
Writer = Annotated[RequestContext, context("complaints:write")]
# The intake (POST /complaints, POST /cases): the checks of `Writer` as one plain dependency,
# with a session only when asked for (an Idempotency-Key's claim); the case is written in
# autocommit on its own connection otherwise (see `shared.context.context(lazy=True)`).
IntakeWriter = Annotated[RequestContext, context("complaints:write", lazy=True)]
Configurer = Annotated[RequestContext, context("desk:configure")]


@dataclass(frozen=True)
class Resource:
    """Where case routes are mounted and how they read there."""

    prefix: str
    param: str
    kind: str | None  # only cases of this type are found under the prefix
    noun: str
    tag: str
    read_model: type[BaseModel]
    view: Callable[[RequestContext, Case], Any]
    transition_model: type[BaseModel]
    note_model: type[BaseModel]


CASES = Resource(
    prefix="/cases",
    param="case_id",
    kind=None,
    noun="case",
    tag="cases",
    read_model=CaseRead,
    view=views.case,
    transition_model=CaseTransitionRequest,
    note_model=CaseNoteCreate,
)
COMPLAINTS = Resource(
    prefix="/complaints",
    param="complaint_id",
    kind="complaint",
    noun="complaint",
    tag="complaints",
    read_model=ComplaintRead,
    view=views.complaint,
    transition_model=TransitionRequest,
    note_model=NoteCreate,
)
