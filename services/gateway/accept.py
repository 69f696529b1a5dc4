"""Accepting an admitted event: idempotency, the event and its outbox row in one transaction, the relay woken."""

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import Counter

from contracts import topics
from contracts.lifecycle import hold_of
from services.common.auth import Principal, author_of
from services.common.problems import Problem
from services.gateway.admission import Admitted
from services.gateway.approval import ApprovalReason
from services.gateway.audit import AuditAction, Entry, append, content_hash
from services.gateway.store import DuplicateEvent, GatewayStore, Submission

log = logging.getLogger(__name__)

ACCEPTED = Counter("budkavle_events_accepted_total", "Events accepted by the gateway", ["program", "type"])

Clock = Callable[[], datetime]


class AcceptEvent:
    def __init__(self, store: GatewayStore, notify_relay: Callable[[], None],
                 clock: Clock = lambda: datetime.now(UTC)) -> None:
        """Every accepted event is registered in the audit register, in the transaction that accepts it."""
        self.store = store
        self.notify_relay = notify_relay
        self.clock = clock

    async def __call__(self, admitted: Admitted, caller: Principal, idempotency_key: str | None,
                       reasons: Sequence[ApprovalReason] = (), amends: str | None = None) -> str:
        """The accepted event's id: a new one, or the first one when the same Idempotency-Key comes back with
        the same body (409 with another body). Keys are scoped per token. With `reasons` (it needs approval),
        it is held: submitted, with no outbox row. `amends`: a correction's or retraction's original."""
        scope = f"{caller.token_id}:{idempotency_key}" if idempotency_key else None
        if scope and (first := await self._first(scope, admitted)) is not None:
            return first
        event = admitted.event.model_copy(update={"published_at": self.clock()})
        held, digest = hold_of(event), content_hash(event)
        submission = Submission(author_of(caller), digest, tuple(r.model_dump() for r in reasons)) if reasons else None
        if submission is not None:
            action, detail = AuditAction.SUBMIT, f"{event.type}, awaiting approval"
        elif amends is not None:
            action = AuditAction.CORRECT if event.type == "correction" else AuditAction.RETRACT
            detail = f"of {amends}"
        elif held is None:
            action, detail = AuditAction.PUBLISH, event.type
        else:
            action, detail = AuditAction.SCHEDULE, f"{event.type}, until {held.until.isoformat()}"
        entry = Entry(author_of(caller), action, event.program, str(event.event_id), digest, detail)
        try:
            await self.store.accept(event, topics.event_topic(event.type), scope, admitted.request_hash,
                                    also=lambda conn: append(conn, entry, event.published_at), held=submission,
                                    amends=amends)
        except DuplicateEvent:
            if scope and (first := await self._first(scope, admitted)) is not None:
                return first  # a concurrent retry won the race
            raise Problem(409, f"event {event.event_id} exists already") from None
        if submission is None:
            self.notify_relay()
        ACCEPTED.labels(event.program, event.type).inc()
        log.info("event accepted", extra={"event_id": str(event.event_id), "program": event.program,
                                          "type": event.type})
        return str(event.event_id)

    async def _first(self, scope: str, admitted: Admitted) -> str | None:
        first = await self.store.by_idempotency(scope)
        if first is None:
            return None
        if first.request_hash != admitted.request_hash:
            raise Problem(409, "Idempotency-Key was used before with a different request")
        return first.event_id
