"""Publisher events, version 1: one envelope, five payload types.

A published version never changes shape; a new shape is a new version.
"""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, Field, HttpUrl, TypeAdapter

from contracts.base import Contract

ProgramId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")]
AudienceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class Importance(StrEnum):
    MUST_KNOW = "must_know"
    AWARENESS = "awareness"


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(Contract):
    event_id: UUID = Field(default_factory=uuid4)
    version: Literal[1] = 1
    program: ProgramId
    occurred_at: AwareDatetime = Field(default_factory=_now)
    published_at: AwareDatetime | None = None
    publisher: Annotated[str, Field(min_length=1, max_length=200)]
    correlation_id: Annotated[str, Field(max_length=200)] | None = None
    importance: Importance
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    embargo_until: AwareDatetime | None = None
    regions: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] | None = None
    audiences: tuple[AudienceId, ...] | None = None
    language: Literal["sv", "en"] = "sv"


class SteeringDecision(Contract):
    committee: Annotated[str, Field(min_length=1, max_length=200)]
    decision_code: Annotated[str, Field(pattern=r"^[A-Z]{1,3}[0-9]{1,3}$")] | None = None
    title: Title
    decision_text: Text
    rationale: Text | None = None
    consequences: Text | None = None
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None


class DesignDecision(Contract):
    workstream: Annotated[str, Field(min_length=1, max_length=200)]
    level: Literal["workstream", "clinical_leadership"]
    title: Title
    summary: Text
    affected_professions: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    affected_processes: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None


class GoLiveMilestone(Contract):
    area: Annotated[str, Field(min_length=1, max_length=64)]
    wave: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    planned_date: date
    status: Literal["planned", "rescheduled", "started", "completed"]
    title: Title
    what_changes: Text
    previous_date: date | None = None
    read_more_url: HttpUrl | None = None


class Milestone(Contract):
    title: Title
    date: date


class StatusUpdate(Contract):
    title: Title
    summary: Text
    phase: Annotated[str, Field(max_length=200)] | None = None
    next_milestones: tuple[Milestone, ...] = ()
    read_more_url: HttpUrl | None = None


class NewsletterSection(Contract):
    heading: Title
    body: Text


class NewsletterIssue(Contract):
    title: Title
    intro: Text | None = None
    sections: tuple[NewsletterSection, ...] = Field(min_length=1)
    send_at: AwareDatetime | None = None


class SteeringDecisionMade(Envelope):
    type: Literal["steering.decision"]
    payload: SteeringDecision


class DesignDecisionMade(Envelope):
    type: Literal["design.decision"]
    payload: DesignDecision


class GoLiveMilestoneReached(Envelope):
    type: Literal["golive.milestone"]
    payload: GoLiveMilestone


class StatusUpdated(Envelope):
    type: Literal["status.update"]
    payload: StatusUpdate


class NewsletterIssued(Envelope):
    type: Literal["newsletter.issue"]
    payload: NewsletterIssue


Event = Annotated[
    SteeringDecisionMade | DesignDecisionMade | GoLiveMilestoneReached | StatusUpdated | NewsletterIssued,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[str, ...] = (
    "steering.decision",
    "design.decision",
    "golive.milestone",
    "status.update",
    "newsletter.issue",
)


def parse_event(data: bytes | str | dict[str, object]) -> Event:
    """Validate one event from JSON text or a decoded mapping; raises pydantic.ValidationError."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)
