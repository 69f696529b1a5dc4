"""An event's lifecycle in types: the statuses every service and the API speak of, and when an event is held.

A status is an enum, never a bare string compared by hand; its values are the words on the wire and in the
API, so that typing them changed no published shape.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime

from contracts.base import Contract
from contracts.events import Event, ProgramId


class PlanStatus(StrEnum):
    """What the tailor's plan of an event says (`EventPlanned.status`)."""

    PLANNED = "planned"  # it goes out now: the scheduler's receipt that a held event was released
    EMBARGOED = "embargoed"  # it is held until the plan's `embargoed_until` (an embargo or a send time)


class EventState(StrEnum):
    """An event's status as the gateway reports it (`GET /v1/events/{id}`)."""

    AWAITING_APPROVAL = "awaiting_approval"  # held by the gateway until a second person approves it
    APPROVAL_EXPIRED = "approval_expired"  # awaited approval too long: a change submits it again
    REJECTED = "rejected"  # an approver said no: a change submits it again
    CANCELLED = "cancelled"  # withdrawn while held: nothing of it was or will be sent
    ACCEPTED = "accepted"  # admitted, not planned yet
    EMBARGOED = "embargoed"  # held until its embargo lifts
    SCHEDULED = "scheduled"  # a newsletter held for its send time
    DELIVERING = "delivering"
    DELIVERED = "delivered"  # every targeted delivery was sent or failed


class OutcomeStatus(StrEnum):
    """What became of one delivery."""

    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"  # refused for now: tried again at `next_attempt_at`


@dataclass(frozen=True)
class Hold:
    """Why and until when nothing of an event leaves."""

    until: datetime
    send_time: bool  # a newsletter's send time (the later of the two when there is an embargo too)


def hold_of(event: Event) -> Hold | None:
    """The instant before which nothing of the event leaves: its embargo, or a newsletter's send time, whichever
    is later. The gateway reports it and the tailor holds by it; this is the one place that computes it."""
    send_at = getattr(event.payload, "send_at", None)
    embargo = event.embargo_until
    if send_at is not None and (embargo is None or send_at >= embargo):
        return Hold(send_at, send_time=True)
    return Hold(embargo, send_time=False) if embargo is not None else None


class EventCancelled(Contract):
    """A held event (embargoed, or a newsletter waiting for its send time) withdrawn before its instant: the
    tailor sends nothing of it and the scheduler releases nothing. Announced by the gateway, keyed by event."""

    version: ClassVar[int] = 1

    event_id: UUID
    program: ProgramId
    cancelled_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return str(self.event_id)
