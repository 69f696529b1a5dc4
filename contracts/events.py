"""Publisher events, version 1: one envelope, five payload types.

A published version never changes shape; a new shape is a new version.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, Field, HttpUrl, TypeAdapter

from contracts.base import Contract

#: The largest event, as JSON, that the platform accepts (the gateway answers 413 above it).
MAX_EVENT_BYTES = 256 * 1024

ProgramId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")]
AudienceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

_FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ufffe\uffff]")
_FORBIDDEN_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _refuse(forbidden: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = forbidden.search(value)
        if found:
            raise ValueError(f"contains the control character U+{ord(found.group()):04X} at position "
                             f"{found.start()}, which {what}")
        return value
    return check


#: One line of text: no control characters at all (a line break in a title would break a mail header) and
#: no U+FFFE/U+FFFF, which XML 1.0 (the Atom feed) cannot carry.
_one_line = AfterValidator(_refuse(_FORBIDDEN_IN_LINE, "a one-line field, a mail header or a feed cannot carry"))
#: Running text: line breaks and tabs, but no other control characters and no U+FFFE/U+FFFF.
_running_text = AfterValidator(_refuse(_FORBIDDEN_IN_TEXT, "pages and feeds cannot carry"))

Line64 = Annotated[str, Field(min_length=1, max_length=64), _one_line]
Line100 = Annotated[str, Field(min_length=1, max_length=100), _one_line]
Line200 = Annotated[str, Field(min_length=1, max_length=200), _one_line]
Title = Line200
Text = Annotated[str, Field(min_length=1, max_length=20_000), _running_text]


def _plausible(value: datetime) -> datetime:
    """Instants between 2000 and 2100 in UTC: anything else is a typo, and an extreme offset at the edge of
    the calendar cannot even be converted to UTC by the services downstream."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant lies outside the calendar once converted to UTC") from None
    if not 2000 <= utc.year < 2100:
        raise ValueError("instant must lie between the years 2000 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]


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
    occurred_at: Instant = Field(default_factory=_now)
    published_at: Instant | None = None
    publisher: Line200
    correlation_id: Annotated[str, Field(max_length=200), _one_line] | None = None
    importance: Importance
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    embargo_until: Instant | None = None
    regions: tuple[Line64, ...] | None = None
    audiences: tuple[AudienceId, ...] | None = None
    language: Literal["sv", "en"] = "sv"


class SteeringDecision(Contract):
    committee: Line200
    decision_code: Annotated[str, Field(pattern=r"^[A-Z]{1,3}[0-9]{1,3}$")] | None = None
    title: Title
    decision_text: Text
    rationale: Text | None = None
    consequences: Text | None = None
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None


class DesignDecision(Contract):
    workstream: Line200
    level: Literal["workstream", "clinical_leadership"]
    title: Title
    summary: Text
    affected_professions: tuple[Line100, ...] = ()
    affected_processes: tuple[Line200, ...] = ()
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None


class GoLiveMilestone(Contract):
    area: Line64
    wave: Line100 | None = None
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
    phase: Annotated[str, Field(max_length=200), _one_line] | None = None
    next_milestones: tuple[Milestone, ...] = ()
    read_more_url: HttpUrl | None = None


class NewsletterSection(Contract):
    heading: Title
    body: Text


class NewsletterIssue(Contract):
    title: Title
    intro: Text | None = None
    sections: tuple[NewsletterSection, ...] = Field(min_length=1)
    send_at: Instant | None = None


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
