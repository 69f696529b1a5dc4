"""What the scheduler says when time has come. The scheduler owns time only; what is sent is the tailor's
decision."""

from typing import Annotated, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import Contract
from contracts.events import AudienceId, ProgramId

#: Namespace of digest ids: a digest's id derives from (programme, group, period), so running a period
#: twice gives the same id, and the channels' ledgers send nothing twice.
DIGEST_NAMESPACE = UUID("7d3c1f0e-5b8a-4c2e-9f61-2a4b8e0d9c17")

PeriodLabel = Annotated[str, Field(pattern=r"^\d{4}-(W\d{2}|\d{2})$", description="2026-W47 (ISO week) or 2026-11")]


def digest_id(program: str, audience_id: str, period: str) -> UUID:
    return uuid5(DIGEST_NAMESPACE, f"{program}:{audience_id}:{period}")


class Period(Contract):
    """A digest's period: [start, end), and its label."""

    label: PeriodLabel
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.end <= self.start:
            raise ValueError("a period ends after it starts")
        return self


class ScheduleDue(Contract):
    """Time has come: a target group's digest for a period (`digest`), or an event held until an instant
    (an embargo, a newsletter's send time) may go out (`release`)."""

    version: ClassVar[int] = 1

    kind: Literal["digest", "release"]
    program: ProgramId
    audience_id: AudienceId | None = None  # digest: the group
    period: Period | None = None  # digest: the period it covers
    event_id: UUID | None = None  # release: the held event
    due_at: AwareDatetime
    requested_by: Literal["schedule", "cli"] = "schedule"

    @model_validator(mode="after")
    def _complete(self) -> "ScheduleDue":
        if self.kind == "digest" and (self.audience_id is None or self.period is None):
            raise ValueError("a digest names its target group and its period")
        if self.kind == "release" and self.event_id is None:
            raise ValueError("a release names its event")
        return self

    @property
    def digest_id(self) -> UUID:
        assert self.audience_id is not None and self.period is not None
        return digest_id(self.program, self.audience_id, self.period.label)

    @property
    def bus_key(self) -> str:
        return str(self.event_id) if self.kind == "release" else f"{self.program}:{self.audience_id}"

