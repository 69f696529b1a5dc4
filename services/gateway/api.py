"""The gateway's HTTP API: POST /v1/events, GET /v1/events/{id}, GET /v1/programs/{program}/audiences.

Routes stay thin: read → admit (pure, `admission.py`) → accept (`accept.py`) or plan → answer. The request
body is read and validated by hand (a streaming size limit, the flat error shape), so its schema — the five
event types as a discriminated union — is added to the OpenAPI document as `Event`.
"""

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import AwareDatetime, BaseModel, Field

from contracts.channels import CHANNELS
from contracts.deliveries import DeliveryPlan
from contracts.events import PROGRAM_PATTERN, Correction, Event, apply_correction, event_adapter, parse_event
from contracts.lifecycle import EventState, hold_of
from programs import Program
from services.common.auth import Principal, TokenAuthority, caller_of
from services.common.problems import Problem, only_declared_query, problem_responses, read_limited
from services.common.sessions import Sessions
from services.gateway.accept import AcceptEvent
from services.gateway.admission import EVENT_BODY, MAX_BODY, admit, send_time_notice
from services.gateway.amendments import original_of
from services.gateway.approval import (
    ApprovalInfo,
    ApprovalReason,
    Approvals,
    Decision,
    approval_reasons,
    reasons_for,
)
from services.gateway.dead_letters import DeadLetterStore, DeadLetterSummary
from services.gateway.status import ChannelCounts, event_status
from services.gateway.store import GatewayStore, StoredEvent

PROGRAM_ID = PROGRAM_PATTERN
AUDIENCE_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
REJECTED = Counter("budkavle_events_rejected_total", "Event requests refused by the gateway", ["status"])

#: Plans an event without sending; the second argument is the caller's Authorization header, which a planner
#: in another process (the tailor) checks for itself.
Planner = Callable[[Event, str], Awaitable[DeliveryPlan]]


class PlannerUnavailable(Exception):
    """The tailor, which owns the directory, could not be asked for a plan."""


#: Renders an event for one target group and channel, nothing sent: (event, audience, channel, the caller's
#: Authorization header) → the rendered message by file suffix. Raises PreviewRefused or PlannerUnavailable.
Previewer = Callable[[Event, str, str, str], Awaitable[dict[str, str]]]


#: Counts each target group's members in the directory: (programme, the caller's Authorization header) →
#: members by group. Raises PlannerUnavailable.
MemberCounter = Callable[[str, str], Awaitable["GroupCounts"]]


@dataclass(frozen=True)
class GroupCounts:
    """Per target group: its people in the directory, and those of them whose address takes no mail."""

    members: dict[str, int]
    undeliverable: dict[str, int] = field(default_factory=dict)


class PreviewRefused(Exception):
    """The tailor cannot render this event for that group and channel (the reason says why)."""


class Preview(BaseModel):
    audience_id: str
    channel: str
    parts: dict[str, str] = Field(description="the rendered message by file suffix: .html, .txt (with the "
                                              "subject) or .json (a Teams card), as a sample member would get it")


class EventAccepted(BaseModel):
    event_id: UUID
    status_url: str
    status: EventState = Field(default=EventState.ACCEPTED, description="accepted, or awaiting_approval: held, "
                                                                       "nothing sent, until a second person approves")
    notice: str | None = Field(default=None, description="what the publisher should know, e.g. a send time "
                                                         "in the past (the newsletter goes out at once)")


class DryRun(BaseModel):
    dry_run: Literal[True] = True
    plan: DeliveryPlan
    approval: list[ApprovalReason] = Field(description="why it would wait for approval (empty: it would not)")


class Failure(BaseModel):
    audience_id: str
    channel: str
    reason: str


class EventSummary(BaseModel):
    """An event as a list shows it: what, by whom, and how far its delivery has come."""

    event_id: UUID
    program: str
    type: str
    title: str | None
    publisher: str
    accepted_at: AwareDatetime
    embargo_until: AwareDatetime | None
    send_at: AwareDatetime | None = Field(default=None, description="a newsletter's send time")
    status: EventState
    groups: dict[str, dict[str, ChannelCounts]]
    totals: dict[str, ChannelCounts]
    approval: ApprovalInfo | None = Field(default=None, description="for an event that needed approval: why, "
                                                                    "who submitted it, who decided, when and why")


class EventList(BaseModel):
    events: list[EventSummary] = Field(description="newest first")


class AmendmentSummary(BaseModel):
    event_id: UUID
    type: Literal["correction", "retraction"]
    accepted_at: AwareDatetime
    what_changed: str | None
    reason: str


class EventStatus(EventSummary):
    """An event's status: its summary, its plan, and what went wrong."""

    plan: DeliveryPlan | None
    event: dict[str, Any] = Field(description="the event as accepted (what a preview of it renders)")
    amends: UUID | None = Field(default=None, description="a correction's or retraction's original")
    amendments: list[AmendmentSummary] = Field(default_factory=list, description=(
        "the corrections and retractions of this event that were released, oldest first"))
    reads_now: dict[str, Any] | None = Field(default=None, description=(
        "the event as its corrections say it reads now (absent when it was never corrected)"))
    decisions: list[Decision] = Field(default_factory=list, description=(
        "what people did to it while it was held: submitted, changed, approved, rejected, cancelled (oldest first)"))
    failures: list[Failure]
    dead_letters: list[DeadLetterSummary] = Field(
        description="what a service could not handle for this event, with the reason (see /v1/dead-letters)")


class AudienceSummary(BaseModel):
    id: str
    name: str
    tier: str
    external: bool
    cleared_for_confidential: bool
    tone: str
    channels: list[str]
    digest: str
    follows: list[str]
    area_scoped: bool
    members: int | None = Field(default=None, description="people in the directory the group's selector matches "
                                                          "(absent when the tailor cannot be asked now)")
    undeliverable: int | None = Field(default=None, description="of them, whose address takes no mail (it bounced): "
                                                                "left out of mail until the directory gives a new one")
    selector: dict[str, list[str]] = Field(description="which people of the directory belong to the group")


class AudienceList(BaseModel):
    program: str
    name: str
    audiences: list[AudienceSummary]


def event_schemas() -> dict[str, Any]:
    """`Event` (the discriminated union of the five event types) and what it refers to, as OpenAPI components."""
    schema = event_adapter().json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "Event": schema}


def _refused(problem: Problem) -> Problem:
    REJECTED.labels(str(problem.status)).inc()
    return problem


def build_http(store: GatewayStore, letters: DeadLetterStore, authority: TokenAuthority, programs: Mapping[str, Program],
               planner: Planner, accept: AcceptEvent, public_url: str, previewer: Previewer | None = None,
               sessions: Sessions | None = None, counter: MemberCounter | None = None,
               approvals: Approvals | None = None) -> APIRouter:
    """`public_url` is where clients reach the API (BUDKAVLE_PUBLIC_URL): status links are built from it,
    never from the request's Host header. With `sessions`, a signed-in person may call it through a
    person-facing service (`caller_of`), as themselves."""
    base = public_url.rstrip("/")
    approvals = approvals or Approvals(store, programs, accept.notify_relay, accept.clock)
    router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(only_declared_query)])

    identify = caller_of(authority, sessions)

    async def principal(request: Request, authorization: Annotated[str | None, Header()] = None,
                        x_csrf_token: Annotated[str | None, Header(max_length=200)] = None) -> Principal:
        try:
            return await identify(request, authorization, x_csrf_token)
        except Problem as problem:
            raise _refused(problem) from None

    Caller = Annotated[Principal, Depends(principal)]

    async def limited_body(request: Request) -> bytes:
        try:
            return await read_limited(request, MAX_BODY)
        except Problem as problem:
            raise _refused(problem) from None

    @router.post("/events", status_code=202, response_model=EventAccepted, openapi_extra=EVENT_BODY,
                 summary="Publish one event (or, with dry_run, see its delivery plan)",
                 responses={200: {"model": DryRun, "description": "dry run: the delivery plan, nothing sent"},
                            **problem_responses(401, 403, 409, 413, 422, 503)})
    async def post_event(caller: Caller, body: Annotated[bytes, Depends(limited_body)],
                         authorization: Annotated[str, Header()],
                         dry_run: bool = Query(False, description="return the delivery plan, send nothing"),
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:
        try:
            admitted = admit(body, caller, programs, accept.clock())
            program = programs[admitted.event.program]
            amends = await original_of(admitted.event, store)
            if dry_run:
                try:
                    plan = await planner(admitted.event, authorization)
                except PlannerUnavailable as exc:
                    raise Problem(503, f"cannot plan now: {exc}") from exc
                run = DryRun(plan=plan, approval=approval_reasons(admitted.event, program, plan))
                return JSONResponse(run.model_dump(mode="json"), status_code=200)
            reasons = await reasons_for(admitted.event, program, planner, authorization, PlannerUnavailable)
            event_id = await accept(admitted, caller, idempotency_key, reasons, amends)
        except Problem as problem:
            raise _refused(problem) from None
        accepted = EventAccepted(event_id=UUID(event_id), status_url=f"{base}/v1/events/{event_id}",
                                 status=EventState.AWAITING_APPROVAL if reasons else EventState.ACCEPTED,
                                 notice=send_time_notice(admitted.event, accept.clock()))
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    # What the document can say of a preview's groups and channels (which group belongs to which programme
    # depends on the event in the body, and the refusal names it).
    every_audience: dict[str, Any] = {"enum": sorted({a.id for p in programs.values() for a in p.audiences})}
    every_channel: dict[str, Any] = {"enum": sorted(CHANNELS)}

    @router.post("/previews", response_model=Preview, openapi_extra=EVENT_BODY,
                 summary="Render one event (or newsletter) for one target group and channel, sending nothing",
                 responses=problem_responses(401, 403, 413, 422, 503))
    async def preview(caller: Caller, body: Annotated[bytes, Depends(limited_body)],
                      authorization: Annotated[str, Header()],
                      audience: Annotated[str, Query(pattern=AUDIENCE_ID, json_schema_extra=every_audience,
                                                     description="a target group of the event's programme")],
                      channel: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_-]{0,31}$", json_schema_extra=every_channel,
                                                    description="a registered channel")],
                      ) -> Preview:
        try:
            admitted = admit(body, caller, programs, accept.clock())
            program = programs[admitted.event.program]
            wrong = ([{"path": "audience", "reason": f"programme {program.program!r} has no target group {audience!r}"}]
                     if program.audience(audience) is None else [])
            if channel not in CHANNELS:
                wrong.append({"path": "channel", "reason": f"no channel {channel!r} (known: {', '.join(sorted(CHANNELS))})"})
            if wrong:
                raise Problem(422, "cannot preview", wrong)
            if previewer is None:
                raise Problem(503, "previews need the tailor (BUDKAVLE_TAILOR_URL)")
            try:
                parts = await previewer(admitted.event, audience, channel, authorization)
            except PreviewRefused as exc:
                raise Problem(422, "cannot preview", [{"path": "channel", "reason": str(exc)}]) from exc
            except PlannerUnavailable as exc:
                raise Problem(503, f"cannot preview now: {exc}") from exc
        except Problem as problem:
            raise _refused(problem) from None
        return Preview(audience_id=audience, channel=channel, parts=parts)

    async def summary_of(stored: StoredEvent) -> EventSummary:
        event_id = UUID(stored.event_id)
        planned = await store.plan_of(event_id)
        event = parse_event(stored.body)
        hold = hold_of(event)
        progress = event_status(planned, await store.outcome_counts(event_id), await store.next_attempts(event_id),
                                scheduled=hold is not None and hold.send_time)
        held = await approvals.state_of(stored)
        return EventSummary(
            event_id=event_id, program=stored.program, type=stored.type, title=event.payload.title,
            publisher=event.publisher, accepted_at=stored.accepted_at, embargo_until=event.embargo_until,
            send_at=getattr(event.payload, "send_at", None), status=held.status or progress.status,
            groups=progress.groups, totals=progress.totals, approval=held.info)

    @router.get("/events", response_model=EventList, summary="The newest events of the caller's programmes",
                responses=problem_responses(401, 403, 422))
    async def list_events(caller: Caller, program: Annotated[str | None, Query(pattern=PROGRAM_ID)] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> EventList:
        if program is not None and program not in caller.programs:
            raise _refused(Problem(403, f"may not read programme {program!r}"))
        chosen = caller.programs if program is None else frozenset({program})
        return EventList(events=[await summary_of(stored) for stored in await store.recent(chosen, limit)])

    @router.get("/events/{event_id}", response_model=EventStatus, summary="An event's status",
                responses=problem_responses(401, 404, 422))
    async def get_event(event_id: UUID, caller: Caller) -> EventStatus:
        stored = await store.get(event_id)
        if stored is None or stored.program not in caller.programs:
            raise _refused(Problem(404, "no such event"))
        summary = await summary_of(stored)
        planned = await store.plan_of(event_id)
        amendments = await store.amendments_of(stored.event_id)
        reads_now = parse_event(stored.body)
        for amendment in amendments:
            if amendment.type == "correction":
                reads_now = apply_correction(reads_now, Correction.model_validate(amendment.body["payload"]))
        return EventStatus(
            **summary.model_dump(), plan=planned[1] if planned else None, event=stored.body,
            amends=UUID(stored.amends) if stored.amends else None,
            amendments=[AmendmentSummary(event_id=UUID(a.event_id), type=a.type, accepted_at=a.accepted_at,
                                         what_changed=a.body["payload"].get("what_changed"),
                                         reason=a.body["payload"]["reason"]) for a in amendments],
            reads_now=reads_now.model_dump(mode="json") if any(a.type == "correction" for a in amendments) else None,
            # The approval's record carries the decisions already, when the event needed one.
            decisions=summary.approval.history if summary.approval else await approvals.history(stored.event_id),
            failures=[Failure(**f) for f in await store.failure_reasons(event_id)],
            dead_letters=await letters.visible(caller, event_id=str(event_id)))

    @router.get("/programs/{program}/audiences", response_model=AudienceList,
                summary="A programme's target groups", responses=problem_responses(401, 403, 404, 422))
    async def audiences(program: Annotated[str, Path(pattern=PROGRAM_ID)], caller: Caller,
                        authorization: Annotated[str, Header()]) -> AudienceList:
        if program not in caller.programs:
            raise _refused(Problem(403, f"token may not read programme {program!r}"))
        config = programs.get(program)
        if config is None:
            raise _refused(Problem(404, f"unknown programme {program!r}"))
        counts = GroupCounts({}, {})
        if counter is not None:
            with contextlib.suppress(PlannerUnavailable):
                counts = await counter(program, authorization)
        return AudienceList(program=program, name=config.name, audiences=[AudienceSummary(
            id=a.id, name=a.name, tier=a.tier.value, external=a.external,
            cleared_for_confidential=a.cleared_for_confidential, tone=a.tone, channels=list(a.channels),
            digest=a.digest, follows=list(a.follows), area_scoped=a.area_scoped, members=counts.members.get(a.id),
            undeliverable=counts.undeliverable.get(a.id, 0) if a.id in counts.members else None,
            selector={k: list(v) for k, v in a.members.items()}) for a in config.audiences])

    return router

