"""Four eyes (DESIGN.md, Governance): what needs a second person's approval before anything of it is sent, and
what people do to an event the gateway holds — change it, approve or reject it, cancel it.

An event that needs approval is accepted with no outbox row: nothing of it leaves the gateway. An approval names
the SHA-256 of the content its approver saw; it releases the event (writes its outbox row) in the same
transaction that records it, and only if the content is still that one, so a change made meanwhile voids it
and the event stays in the queue. Nobody approves what they wrote or last changed; a system's token never
approves. A submission not decided within the programme's `expires_after_hours` can no longer be approved: a
change submits it again. Of two approvers racing, one decides; the other is told who did.

A held event that went out to the tailor (embargoed, or a newsletter waiting for its send time) can still be
cancelled before its instant: the gateway announces it (`lifecycle.event_cancelled.v1`) and the tailor and the
scheduler both stop it.
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts import topics
from contracts.deliveries import DeliveryPlan
from contracts.events import PROGRAM_PATTERN, Event, parse_event
from contracts.lifecycle import EventCancelled, EventState, PlanStatus, hold_of
from programs import Program, Role
from services.common.auth import Principal, TokenRole, author_of
from services.common.db import as_utc
from services.common.problems import Problem, only_declared_query, problem_responses, read_limited, read_model
from services.gateway.admission import EVENT_BODY, MAX_BODY, admit
from services.gateway.amendments import original_of
from services.gateway.audit import AuditAction, Entry, append, content_hash
from services.gateway.store import GatewayStore, Held, StoredEvent, decisions, events, outbox

#: An approval's or a cancellation's body: a decision, a hash and a comment of at most 2 000 characters.
SMALL_BODY = 16 * 1024
#: A held event can be cancelled until this long before its instant: later, the release may be on its way.
CANCEL_MARGIN = timedelta(seconds=30)

Clock = Callable[[], datetime]
#: Plans an event without sending (the gateway's dry run): (event, the caller's Authorization header).
Planner = Callable[[Event, str], Awaitable[DeliveryPlan]]


class ApprovalReason(BaseModel):
    rule: Literal["importance", "external", "recipients", "unplanned"]
    detail: str


def needs_plan(event: Event, program: Program) -> bool:
    """Does deciding whether `event` needs approval take its plan (its groups and recipients)? Not when no
    rule asks, or when its importance alone already says yes."""
    rules = program.approval
    if rules is None or event.importance in rules.required_for.importance:
        return False
    return rules.required_for.external or rules.required_for.recipients_over is not None


def approval_reasons(event: Event, program: Program, plan: DeliveryPlan | None,
                     plan_error: str | None = None) -> list[ApprovalReason]:
    """Why `event` needs approval under the programme's rules (empty: it does not). Pure. `plan` is its dry
    run when `needs_plan` said so; `plan_error` why there is none: then it is held, to be safe."""
    rules = program.approval
    if rules is None:
        return []
    wanted = rules.required_for
    reasons = []
    if event.importance in wanted.importance:
        reasons.append(ApprovalReason(rule="importance", detail=event.importance.value))
    if plan is None:
        if plan_error is not None and not reasons and needs_plan(event, program):
            reasons.append(ApprovalReason(rule="unplanned", detail=plan_error))
        return reasons
    external = [g.audience_id for g in plan.groups
                if (audience := program.audience(g.audience_id)) is not None and audience.external]
    if wanted.external and external:
        reasons.append(ApprovalReason(rule="external", detail=", ".join(external)))
    recipients = sum(g.recipients for g in plan.groups)
    if wanted.recipients_over is not None and recipients > wanted.recipients_over:
        reasons.append(ApprovalReason(rule="recipients", detail=f"{recipients} > {wanted.recipients_over}"))
    return reasons


async def reasons_for(event: Event, program: Program, planner: Planner, authorization: str,
                      unavailable: type[Exception]) -> list[ApprovalReason]:
    """`approval_reasons`, asking the planner (the tailor) when a rule needs the plan; a planner that cannot be
    asked (`unavailable`) holds the event for approval rather than let it through."""
    if not needs_plan(event, program):
        return approval_reasons(event, program, None)
    try:
        return approval_reasons(event, program, await planner(event, authorization))
    except unavailable as exc:
        return approval_reasons(event, program, None, f"the recipients could not be counted now: {exc}")


class Decision(BaseModel):
    action: Literal["submit", "change", "approve", "reject", "cancel"]
    actor: str = Field(description="a person's subject, or a token's handle")
    at: AwareDatetime
    content_hash: str | None = Field(description="SHA-256 of the content it concerned")
    comment: str | None


class ApprovalInfo(BaseModel):
    """Why the event needs approval, what an approval must name, and what people did to it."""

    reasons: list[ApprovalReason]
    content_hash: str = Field(description="SHA-256 of the content as it stands: an approval must name it")
    submitted_by: str
    submitted_at: AwareDatetime
    changed_by: str = Field(description="who submitted it or last changed it (neither may approve it)")
    changed_at: AwareDatetime
    expires_at: AwareDatetime = Field(description="until when it can be approved; a change submits it again")
    history: list[Decision] = Field(description="oldest first")


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="the SHA-256 of the content the approver "
                                                                      "saw (the status's approval.content_hash)")
    comment: str | None = Field(default=None, max_length=2000, description="why; required to reject")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)


class ApprovalQueue(BaseModel):
    events: list[UUID] = Field(description="awaiting approval, oldest submission first (each one's status at "
                                           "/v1/events/{id})")


class Outcome(BaseModel):
    event_id: UUID
    status: EventState
    status_url: str


@dataclass(frozen=True)
class HeldState:
    """What `Approvals.state_of` says of a stored event."""

    status: EventState | None  # None: released (its status comes from its plan)
    info: ApprovalInfo | None


class Approvals:
    def __init__(self, store: GatewayStore, programs: Mapping[str, Program], notify_relay: Callable[[], None],
                 clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.programs = programs
        self.notify_relay = notify_relay
        self.clock = clock

    def expires_at(self, stored: StoredEvent) -> datetime:
        rules = self.programs[stored.program].approval
        hours = rules.expires_after_hours if rules is not None else 72
        return (stored.changed_at or stored.accepted_at) + timedelta(hours=hours)

    async def history(self, event_id: str) -> list[Decision]:
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(decisions).where(decisions.c.event_id == event_id)
                                       .order_by(decisions.c.id))).mappings().all()
        return [Decision(action=r["action"], actor=r["actor"], at=as_utc(r["at"]), content_hash=r["content_hash"],
                         comment=r["comment"]) for r in rows]

    async def state_of(self, stored: StoredEvent) -> HeldState:
        """The status an event held here has (None for a released one), and its approval's record if it
        ever needed one."""
        history = await self.history(stored.event_id) if stored.content_hash is not None else []
        info = None
        if history:
            submitted = history[0]
            info = ApprovalInfo(
                reasons=[ApprovalReason(**r) for r in stored.approval_reasons], content_hash=stored.content_hash or "",
                submitted_by=submitted.actor, submitted_at=submitted.at, changed_by=stored.changed_by or submitted.actor,
                changed_at=stored.changed_at or submitted.at, expires_at=self.expires_at(stored), history=history)
        if stored.state is Held.AWAITING_APPROVAL:
            expired = self.clock() >= self.expires_at(stored)
            return HeldState(EventState.APPROVAL_EXPIRED if expired else EventState.AWAITING_APPROVAL, info)
        if stored.state is Held.REJECTED:
            return HeldState(EventState.REJECTED, info)
        if stored.state is Held.CANCELLED:
            return HeldState(EventState.CANCELLED, info)
        return HeldState(None, info)

    async def queue(self, programs: frozenset[str], limit: int) -> list[StoredEvent]:
        """Events awaiting approval in these programmes, oldest submission first."""
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(events).where(events.c.program.in_(sorted(programs)),
                                                            events.c.state == Held.AWAITING_APPROVAL)
                                       .order_by(events.c.changed_at, events.c.event_id).limit(limit))).all()
        return [self.store.from_row(r) for r in rows]

    async def _explain(self, event_id: str, doing: str) -> Problem:
        """Why `doing` cannot be done to the event as it now stands (409)."""
        stored = await self.store.get(UUID(event_id))
        assert stored is not None
        history = await self.history(event_id)
        by = f" by {history[-1].actor} at {history[-1].at.isoformat()}" if history else ""
        reason = {
            Held.RELEASED: ("it needs no approval" if stored.content_hash is None
                            else f"it was approved already{by}"),
            Held.REJECTED: f"it was rejected{by}; a change submits it again",
            Held.CANCELLED: f"it was cancelled{by}",
            Held.AWAITING_APPROVAL: f"it was changed{by} (content {stored.content_hash})",
        }[stored.state]
        return Problem(409, f"cannot {doing}: {reason}")

    async def _record(self, conn: AsyncConnection, event_id: str, action: str, actor: str, at: datetime,
                      digest: str | None, comment: str | None) -> None:
        await conn.execute(insert(decisions).values(event_id=event_id, action=action, actor=actor, at=at,
                                                    content_hash=digest, comment=comment))

    async def _release(self, conn: AsyncConnection, event: Event, now: datetime) -> tuple[AuditAction, str]:
        """Write the event's outbox row (published now); the register's action and detail for it."""
        published = event.model_copy(update={"published_at": now})
        body = published.model_dump_json()
        await conn.execute(update(events).where(events.c.event_id == str(event.event_id))
                           .values(body=body, state=Held.RELEASED))
        await conn.execute(insert(outbox).values(topic=topics.event_topic(event.type), key=str(event.event_id),
                                                 payload=body, created_at=now))
        held = hold_of(published)
        if held is None:
            return AuditAction.PUBLISH, f"{event.type}, released"
        return AuditAction.SCHEDULE, f"{event.type}, released, held until {held.until.isoformat()}"

    async def decide(self, stored: StoredEvent, caller: Principal, decision: ApprovalIn) -> EventState:
        """Approve (release it) or reject an event awaiting approval; the Problem that refuses it."""
        if caller.person is None:
            raise Problem(403, "a system's token never approves: a person with the approver role does")
        if not caller.person.may(stored.program, Role.APPROVER):
            raise Problem(403, f"you are not an approver in programme {stored.program!r}")
        if stored.state is not Held.AWAITING_APPROVAL:
            raise await self._explain(stored.event_id, decision.decision)
        history = await self.history(stored.event_id)
        authors = {d.actor for d in history if d.action in ("submit", "change")} | {stored.changed_by}
        if caller.person.sub in authors:
            raise Problem(403, "nobody approves or rejects what they wrote or changed: another approver must")
        if decision.content_hash != stored.content_hash:
            raise Problem(409, f"the content changed since you saw it (it is now {stored.content_hash}): read it "
                               "again before you decide")
        now = self.clock()
        if now >= self.expires_at(stored):
            raise Problem(409, f"the submission expired at {self.expires_at(stored).isoformat()}: it can no longer "
                               "be approved; a change by its author submits it again")
        if decision.decision == "reject" and not (decision.comment or "").strip():
            raise Problem(422, "a rejection says why", [{"path": "comment", "reason": "required to reject"}])
        actor = author_of(caller)
        async with self.store.engine.begin() as conn:
            won = await conn.execute(update(events).where(
                events.c.event_id == stored.event_id, events.c.state == Held.AWAITING_APPROVAL,
                events.c.content_hash == decision.content_hash,
            ).values(state=Held.REJECTED if decision.decision == "reject" else Held.RELEASED))
            if won.rowcount != 1:
                raise await self._lost(stored.event_id, decision.decision, conn)
            await self._record(conn, stored.event_id, decision.decision, actor, now, stored.content_hash,
                               decision.comment)
            if decision.decision == "approve":
                action, detail = await self._release(conn, parse_event(stored.body), now)
                await append(conn, Entry(actor, AuditAction.APPROVE, stored.program, stored.event_id,
                                         stored.content_hash, f"{detail} ({action.value})"), now)
            else:
                await append(conn, Entry(actor, AuditAction.REJECT, stored.program, stored.event_id,
                                         stored.content_hash, stored.type), now)
        if decision.decision == "approve":
            self.notify_relay()
            return EventState.ACCEPTED
        return EventState.REJECTED

    async def _lost(self, event_id: str, doing: str, conn: AsyncConnection) -> Problem:
        """Someone else acted first (the transaction is left to roll back)."""
        await conn.rollback()
        return await self._explain(event_id, doing)

    async def change(self, stored: StoredEvent, event: Event, caller: Principal,
                     reasons: list[ApprovalReason], amends: str | None = None) -> EventState:
        """Replace a held event's content (its author, or another editor): a submission again, which voids any
        decision on the content before; released at once if it no longer needs approval."""
        if not stored.state.changeable:
            raise Problem(409, "only an event awaiting approval, or rejected, can be changed: "
                               + ("it was cancelled" if stored.state is Held.CANCELLED
                                  else "it was released; send a correction"))
        if event.program != stored.program or event.type != stored.type:
            raise Problem(422, "invalid event", [{"path": "type" if event.program == stored.program else "program",
                                                  "reason": "an event keeps its programme and type when changed"}])
        event = event.model_copy(update={"event_id": UUID(stored.event_id)})
        actor, now, digest = author_of(caller), self.clock(), content_hash(event)
        async with self.store.engine.begin() as conn:
            won = await conn.execute(update(events).where(
                events.c.event_id == stored.event_id, events.c.state == stored.state,
                events.c.content_hash == stored.content_hash,
            ).values(body=event.model_dump_json(), state=Held.AWAITING_APPROVAL, content_hash=digest,
                     changed_by=actor, changed_at=now, amends=amends,
                     approval_reasons=json.dumps([r.model_dump() for r in reasons])))
            if won.rowcount != 1:
                raise await self._lost(stored.event_id, "change it", conn)
            await self._record(conn, stored.event_id, "change", actor, now, digest, None)
            if reasons:
                await append(conn, Entry(actor, AuditAction.SUBMIT, stored.program, stored.event_id, digest,
                                         f"{stored.type}, changed"), now)
            else:
                action, detail = await self._release(conn, event, now)
                await append(conn, Entry(actor, action, stored.program, stored.event_id, digest,
                                         f"{detail}, after a change that needs no approval"), now)
        if not reasons:
            self.notify_relay()
            return EventState.ACCEPTED
        return EventState.AWAITING_APPROVAL

    async def cancel(self, stored: StoredEvent, caller: Principal, comment: str | None) -> EventState:
        """Withdraw a held event: one awaiting approval or rejected here, or one the tailor holds for its
        instant (then announced, so that the tailor and the scheduler stop it)."""
        if not caller.may_in(stored.program, TokenRole.PUBLISHER):
            raise Problem(403, f"you may not cancel events of programme {stored.program!r}")
        now, actor = self.clock(), author_of(caller)
        event = parse_event(stored.body)
        if stored.state is Held.CANCELLED:
            raise await self._explain(stored.event_id, "cancel")
        if stored.state is Held.RELEASED:
            await self._refuse_cancel_of_released(stored, event, now)
        async with self.store.engine.begin() as conn:
            won = await conn.execute(update(events).where(events.c.event_id == stored.event_id,
                                                          events.c.state == stored.state).values(state=Held.CANCELLED))
            if won.rowcount != 1:
                raise await self._lost(stored.event_id, "cancel", conn)
            await self._record(conn, stored.event_id, "cancel", actor, now, content_hash(event), comment)
            if stored.state is Held.RELEASED:
                notice = EventCancelled(event_id=event.event_id, program=event.program, cancelled_at=now)
                await conn.execute(insert(outbox).values(topic=topics.EVENT_CANCELLED, key=notice.bus_key,
                                                         payload=notice.model_dump_json(), created_at=now))
            await append(conn, Entry(actor, AuditAction.CANCEL, stored.program, stored.event_id, content_hash(event),
                                     f"{stored.type}, {stored.state.value}"), now)
        if stored.state is Held.RELEASED:
            self.notify_relay()
        return EventState.CANCELLED

    async def _refuse_cancel_of_released(self, stored: StoredEvent, event: Event, now: datetime) -> None:
        """A released event can be cancelled only while the tailor holds it and its instant is not near."""
        hold = hold_of(event)
        planned = await self.store.plan_of(UUID(stored.event_id))
        if hold is not None and hold.until > now + CANCEL_MARGIN and (planned is None
                                                                     or planned[0] is PlanStatus.EMBARGOED):
            return
        counts = await self.store.outcome_counts(UUID(stored.event_id))
        sent = sum(n for (_, _, status), n in counts.items() if status == "sent")
        targeted = sum(n for by_channel in (planned[1].targeted.values() if planned else ()) for n in by_channel.values())
        if hold is None:
            when = f"it went out when it was accepted ({stored.accepted_at.isoformat()})"
        else:
            when = f"it is released at {hold.until.isoformat()}, and a cancel must come {CANCEL_MARGIN.seconds} s before"
        raise Problem(409, f"cannot cancel: sending began or is about to — {when}; so far {sent} of {targeted} "
                           "deliveries sent (see the status); send a retraction instead")


def build_http(approvals: Approvals, store: GatewayStore, programs: Mapping[str, Program], planner: Planner,
               unavailable: type[Exception], caller_dependency: Any, public_url: str) -> APIRouter:
    """`PUT /v1/events/{id}` (change a held event), `POST /v1/events/{id}/approval`, `POST
    /v1/events/{id}/cancellation` and `GET /v1/approvals` (the queue)."""
    base = public_url.rstrip("/")
    router = APIRouter(prefix="/v1", tags=["approval"], dependencies=[Depends(only_declared_query)])
    Caller = Annotated[Principal, Depends(caller_dependency)]

    async def held(event_id: UUID, caller: Principal) -> StoredEvent:
        stored = await store.get(event_id)
        if stored is None or stored.program not in caller.programs:
            raise Problem(404, "no such event")
        return stored

    def outcome(event_id: str, status: EventState) -> Outcome:
        return Outcome(event_id=UUID(event_id), status=status, status_url=f"{base}/v1/events/{event_id}")

    @router.put("/events/{event_id}", response_model=Outcome, openapi_extra=EVENT_BODY,
                summary="Change an event awaiting approval (or rejected): it is submitted again",
                responses=problem_responses(401, 403, 404, 409, 413, 422))
    async def change(event_id: UUID, caller: Caller, request: Request,
                     authorization: Annotated[str, Header()]) -> Outcome:
        stored = await held(event_id, caller)
        admitted = admit(await read_limited(request, MAX_BODY), caller, programs, approvals.clock())
        program = programs[admitted.event.program]
        amends = await original_of(admitted.event, store)
        reasons = await reasons_for(admitted.event, program, planner, authorization, unavailable)
        return outcome(stored.event_id, await approvals.change(stored, admitted.event, caller, reasons, amends))

    def body_of(model: type[BaseModel]) -> dict[str, Any]:
        return {"requestBody": {"required": True, "content": {"application/json": {
            "schema": model.model_json_schema()}}}}

    @router.post("/events/{event_id}/approval", response_model=Outcome, openapi_extra=body_of(ApprovalIn),
                 summary="Approve (and so release) or reject an event awaiting approval",
                 responses=problem_responses(401, 403, 404, 409, 413, 422))
    async def approve(event_id: UUID, caller: Caller, request: Request) -> Outcome:
        stored = await held(event_id, caller)
        body = await read_model(request, ApprovalIn, SMALL_BODY, "approval")
        return outcome(stored.event_id, await approvals.decide(stored, caller, body))

    @router.post("/events/{event_id}/cancellation", response_model=Outcome, openapi_extra=body_of(CancelIn),
                 summary="Cancel a held event (awaiting approval, rejected, embargoed or scheduled)",
                 responses=problem_responses(401, 403, 404, 409, 413, 422))
    async def cancel(event_id: UUID, caller: Caller, request: Request) -> Outcome:
        stored = await held(event_id, caller)
        body = await read_model(request, CancelIn, SMALL_BODY, "cancellation")
        return outcome(stored.event_id, await approvals.cancel(stored, caller, body.comment))

    @router.get("/approvals", response_model=ApprovalQueue, summary="Events awaiting approval in the caller's programmes",
                responses=problem_responses(401, 403, 422))
    async def queue(caller: Caller, program: Annotated[str | None, Query(pattern=PROGRAM_PATTERN)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 200) -> ApprovalQueue:
        if program is not None and program not in caller.programs:
            raise Problem(403, f"may not read programme {program!r}")
        chosen = caller.programs if program is None else frozenset({program})
        return ApprovalQueue(events=[UUID(s.event_id) for s in await approvals.queue(chosen, limit)])

    return router
