"""The gateway's own tables: accepted events, the transactional outbox, and what it hears of plans and outcomes."""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.deliveries import DeliveryOutcomes, DeliveryPlan, EventPlanned
from contracts.events import Event
from contracts.lifecycle import PlanStatus
from services.common.db import as_utc, upsert
from services.common.delivery import without_addresses
from services.common.ended_sessions import ended_sessions_table
from services.common.migrations import Migrations
from services.common.tallies import beyond_plan, chunk_table, sort_out, tally

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "gateway", metadata)
#: Sessions ended by sign-out, as announced: a person's session passed on by the console opens nothing after.
ENDED_SESSIONS = ended_sessions_table(metadata, "gateway_ended_sessions")

events = Table(
    "gateway_events", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False, index=True),
    Column("type", String(40), nullable=False),
    Column("body", Text, nullable=False),
    Column("idempotency_scope", String(300), nullable=True),
    Column("request_hash", String(64), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    # Where the gateway holds it (`Held`): released to the bus, awaiting a second person's approval, rejected,
    # or cancelled. Only a released event has ever had an outbox row.
    Column("state", String(24), nullable=False, server_default="released", index=True),
    Column("content_hash", String(64), nullable=True),  # of the content as it stands (what an approval binds to)
    Column("changed_by", String(200), nullable=True),  # who submitted it or last changed it
    Column("changed_at", DateTime(timezone=True), nullable=True),
    Column("approval_reasons", Text, nullable=True),  # JSON: why it needs approval
    Column("amends", String(36), nullable=True, index=True),  # a correction's or retraction's original
    UniqueConstraint("idempotency_scope", name="uq_gateway_events_idempotency"),
)

#: What people did to a held event, in order: submitted, changed, approved, rejected, cancelled (with their
#: comments). The status shows it; the audit register holds the same acts without the comments.
decisions = Table(
    "gateway_decisions", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("content_hash", String(64), nullable=True),
    Column("comment", Text, nullable=True),
)

outbox = Table(
    "gateway_outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True, index=True),
)

plans = Table(
    "gateway_plans", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("plan", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Each delivery command's newest counts, as the channels announce them (`services/common/tallies.py`).
chunks = chunk_table(metadata, "gateway_chunks")

#: The deliveries not sent (deferred or failed), named with their reasons: what an event's status shows of
#: who is still waiting and why. A chunk's newer state replaces its rows.
outcomes = Table(
    "gateway_unsent", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("channel", String(32), primary_key=True),
    Column("chunk", String(300), primary_key=True),
    Column("recipient_key", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)


#: What the retention folded of the per-person outcome rows kept before outcomes were counted per chunk:
#: their counts, so that an older event's status keeps its figures.
outcome_counts = Table(
    "gateway_outcome_counts", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
)

class DuplicateEvent(Exception):
    pass


class Held(StrEnum):
    """Where the gateway holds an accepted event (the `state` column)."""

    RELEASED = "released"  # in the outbox: on its way to the tailor (which holds it for an embargo, if any)
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"  # an approver said no; a change submits it again
    CANCELLED = "cancelled"

    @property
    def changeable(self) -> bool:
        """Not yet released and not cancelled: its author may still change (and so resubmit) it."""
        return self in (Held.AWAITING_APPROVAL, Held.REJECTED)


@dataclass(frozen=True)
class Submission:
    """An event held for approval: who submitted it, the hash an approval must name, and why it needs one."""

    actor: str
    content_hash: str
    reasons: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    key: str
    payload: str


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    program: str
    type: str
    body: dict[str, Any]
    request_hash: str
    accepted_at: datetime
    state: Held = Held.RELEASED
    content_hash: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None
    approval_reasons: tuple[dict[str, str], ...] = ()
    amends: str | None = None


class GatewayStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._relaying = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    async def accept(self, event: Event, topic: str, idempotency_scope: str | None, request_hash: str,
                     also: Callable[[AsyncConnection], Awaitable[Any]] | None = None,
                     held: "Submission | None" = None, amends: str | None = None) -> None:
        """Record the event and its outbox row in one transaction: both or neither (and `also`, e.g. the
        audit register's row, in the same transaction). A `held` event (it needs approval) gets no outbox row:
        nothing of it leaves until it is approved. It is accepted when the gateway published it."""
        now = event.published_at or datetime.now(UTC)
        body = event.model_dump_json()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(events).values(
                    event_id=str(event.event_id), program=event.program, type=event.type, body=body,
                    idempotency_scope=idempotency_scope, request_hash=request_hash, accepted_at=now,
                    state=Held.RELEASED if held is None else Held.AWAITING_APPROVAL,
                    content_hash=None if held is None else held.content_hash,
                    changed_by=None if held is None else held.actor, changed_at=None if held is None else now,
                    approval_reasons=None if held is None else json.dumps(held.reasons), amends=amends))
                if held is None:
                    await conn.execute(insert(outbox).values(topic=topic, key=str(event.event_id), payload=body,
                                                             created_at=now))
                else:
                    await conn.execute(insert(decisions).values(
                        event_id=str(event.event_id), action="submit", actor=held.actor, at=now,
                        content_hash=held.content_hash, comment=None))
                if also is not None:
                    await also(conn)
        except IntegrityError as exc:
            raise DuplicateEvent(str(event.event_id)) from exc

    async def by_idempotency(self, scope: str) -> StoredEvent | None:
        return await self._one(events.c.idempotency_scope == scope)

    async def get(self, event_id: UUID) -> StoredEvent | None:
        return await self._one(events.c.event_id == str(event_id))

    async def _one(self, where: Any) -> StoredEvent | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events).where(where))).first()
        return None if row is None else self.from_row(row)

    async def amendments_of(self, original: str) -> list[StoredEvent]:
        """The corrections and retractions of `original` that were released, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events).where(events.c.amends == original,
                                                            events.c.state == Held.RELEASED)
                                       .order_by(events.c.accepted_at, events.c.event_id))).all()
        return [self.from_row(r) for r in rows]

    async def retracted(self, original: str) -> bool:
        """Has a retraction of `original` (or of an amendment of it) been released?"""
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(events.c.event_id).where(
                events.c.amends == original, events.c.type == "retraction", events.c.state == Held.RELEASED))).first()
        return found is not None

    async def recent(self, programs: Collection[str], limit: int) -> list[StoredEvent]:
        """The newest events of these programmes, newest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events).where(events.c.program.in_(sorted(programs)))
                                       .order_by(events.c.accepted_at.desc(), events.c.event_id).limit(limit))).all()
        return [self.from_row(r) for r in rows]

    @staticmethod
    def from_row(row: Any) -> StoredEvent:
        return StoredEvent(row.event_id, row.program, row.type, json.loads(row.body), row.request_hash,
                           as_utc(row.accepted_at), Held(row.state), row.content_hash, row.changed_by,
                           as_utc(row.changed_at),
                           tuple(json.loads(row.approval_reasons)) if row.approval_reasons else (), row.amends)

    async def pending_outbox(self, limit: int) -> list[tuple[int, str, str, str]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                .where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(limit)
            )).all()
        return [(r.id, r.topic, r.key, r.payload) for r in rows]

    async def relay_pending(self, limit: int, publish: Callable[[list[OutboxRow]], Awaitable[None]]) -> int:
        """Publish up to `limit` unpublished outbox rows in order and mark them, in one transaction that
        holds their rows: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so that two gateways never relay one row
        at the same time (each takes rows the other does not hold). A crash before the mark republishes
        (at least once); the tailor plans nothing twice."""
        query = (select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                 .where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(limit))
        # SQLite (the embedded mode: one process) has no row locks; relays in one process take turns.
        async with self._relaying, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [OutboxRow(r.id, r.topic, r.key, r.payload) for r in (await conn.execute(query)).all()]
            if rows:
                await publish(rows)
                await conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                                   .values(published_at=datetime.now(UTC)))
        return len(rows)

    async def requeue_unplanned(self) -> int:
        """After a start: put back in the outbox every accepted event whose plan was never heard. With an
        in-memory broker a crash loses what was on the bus; the tailor plans nothing twice."""
        unplanned = select(events.c.event_id).where(events.c.event_id.not_in(select(plans.c.event_id)))
        async with self.engine.begin() as conn:
            result = await conn.execute(update(outbox).where(outbox.c.key.in_(unplanned),
                                                             outbox.c.published_at.is_not(None))
                                        .values(published_at=None))
        return int(result.rowcount or 0)

    async def record_plan(self, planned: EventPlanned) -> None:
        async with self.engine.begin() as conn:
            current = (await conn.execute(
                select(plans.c.status).where(plans.c.event_id == str(planned.plan.event_id)))).scalar()
            if current == PlanStatus.PLANNED and planned.status is PlanStatus.EMBARGOED:
                return  # a late, redelivered embargo notice never hides that the event went out
            await upsert(conn, plans, {"event_id": str(planned.plan.event_id), "status": planned.status,
                                       "plan": planned.plan.model_dump_json(), "updated_at": planned.planned_at},
                         ("event_id",))

    async def record_outcomes(self, states: Sequence[DeliveryOutcomes]) -> list[tuple[DeliveryOutcomes, str]]:
        """Keep each chunk's newest counts and its unsent deliveries, in one transaction for the batch; returns
        the announcements refused (a chunk larger than the plan targeted), which count nothing. Outcomes of a
        digest (not an event this gateway accepted) are not kept: the gateway reports events."""
        ids = sorted({str(s.event_id) for s in states})
        async with self.engine.begin() as conn:
            accepted: set[str] = set()
            targeted: dict[str, DeliveryPlan] = {}
            for start in range(0, len(ids), 500):
                some = ids[start:start + 500]
                accepted.update((await conn.execute(select(events.c.event_id).where(events.c.event_id.in_(some))))
                                .scalars())
                targeted.update({r.event_id: DeliveryPlan.model_validate_json(r.plan) for r in (await conn.execute(
                    select(plans.c.event_id, plans.c.plan).where(plans.c.event_id.in_(some)))).all()})

            def why_not(state: DeliveryOutcomes) -> str | None:
                plan = targeted.get(str(state.event_id))
                return beyond_plan(state, plan.targeted.get(state.audience_id, {}).get(state.channel)
                                   if plan is not None else None)

            counted, refused = sort_out((s for s in states if str(s.event_id) in accepted), why_not)
            kept = (await tally(conn, chunks, counted)).kept
            for state in kept:
                await conn.execute(delete(outcomes).where(
                    outcomes.c.event_id == str(state.event_id), outcomes.c.audience_id == state.audience_id,
                    outcomes.c.channel == state.channel, outcomes.c.chunk == state.chunk))
            rows = [{"event_id": str(o.event_id), "audience_id": o.audience_id, "channel": o.channel,
                     "chunk": state.chunk, "recipient_key": o.recipient_id or "", "status": o.status,
                     "reason": o.reason, "next_attempt_at": o.next_attempt_at, "at": o.at}
                    for state in kept for o in state.unsent]
            if rows:
                await conn.execute(insert(outcomes), rows)
        return refused

    async def plan_of(self, event_id: UUID) -> tuple[PlanStatus, DeliveryPlan] | None:
        """The plan's status and the plan, as the tailor announced it."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(plans).where(plans.c.event_id == str(event_id)))).first()
        return (PlanStatus(row.status), DeliveryPlan.model_validate_json(row.plan)) if row else None

    async def outcome_counts(self, event_id: UUID) -> dict[tuple[str, str, str], int]:
        """(audience, channel, status) → count: the chunks' counts, and those the retention folded before
        outcomes were counted per chunk."""
        c, f = chunks, outcome_counts
        async with self.engine.connect() as conn:
            sums = (await conn.execute(
                select(c.c.audience_id, c.c.channel, func.sum(c.c.sent), func.sum(c.c.failed), func.sum(c.c.deferred))
                .where(c.c.event_id == str(event_id)).group_by(c.c.audience_id, c.c.channel))).all()
            folded = (await conn.execute(select(f.c.audience_id, f.c.channel, f.c.status, f.c.count)
                                         .where(f.c.event_id == str(event_id)))).all()
        counts: dict[tuple[str, str, str], int] = {}
        rows = [*((a, ch, status, n) for a, ch, *ns in sums for status, n in zip(("sent", "failed", "deferred"), ns,
                                                                                 strict=True)),
                *folded]
        for audience, channel, status, n in rows:
            if n:
                counts[(audience, channel, status)] = counts.get((audience, channel, status), 0) + int(n)
        return counts

    async def forget_failed(self, before: datetime) -> int:
        """The retention: forget who a failed delivery older than `before` was for (its chunk keeps the count;
        deferred ones are still under way)."""
        async with self.engine.begin() as conn:
            return (await conn.execute(delete(outcomes).where(outcomes.c.at < before,
                                                              outcomes.c.status != "deferred"))).rowcount or 0

    async def next_attempts(self, event_id: UUID) -> dict[tuple[str, str], datetime]:
        """(audience, channel) → the earliest next attempt of its deferred deliveries."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(outcomes.c.audience_id, outcomes.c.channel, func.min(outcomes.c.next_attempt_at))
                .where(outcomes.c.event_id == str(event_id), outcomes.c.status == "deferred")
                .group_by(outcomes.c.audience_id, outcomes.c.channel)
            )).all()
        return {(r[0], r[1]): as_utc(r[2]) for r in rows if r[2] is not None}

    async def failure_reasons(self, event_id: UUID, limit: int = 20) -> list[dict[str, str]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(outcomes.c.audience_id, outcomes.c.channel, outcomes.c.reason)
                .where(outcomes.c.event_id == str(event_id), outcomes.c.status == "failed").limit(limit)
            )).all()
        # Channels keep no address in a reason; rows recorded before they did are cleaned here as well.
        return [{"audience_id": r[0], "channel": r[1], "reason": without_addresses(r[2] or "")} for r in rows]
