"""What the scheduler says when time has come. The scheduler owns time only; what is sent is the tailor's
decision."""

from enum import StrEnum
from typing import Annotated, Final, Literal
from uuid import UUID, uuid5

from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

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


class DigestAsker(StrEnum):
    """Who asked for a digest, which decides who gets it (rule 9)."""

    SCHEDULE = "schedule"  # the cadence came round: each member gets the cadence they chose
    OPERATOR = "operator"  # asked for by hand (`budkavle digest run`): every member who has not declined digests

    @property
    def every_member(self) -> bool:
        return self is DigestAsker.OPERATOR


class DigestDue(Contract):
    """Time has come for a target group's digest of a period."""

    kind: Literal["digest"] = "digest"
    program: ProgramId
    audience_id: AudienceId
    period: Period
    due_at: AwareDatetime
    asked_by: DigestAsker = DigestAsker.SCHEDULE

    @property
    def digest_id(self) -> UUID:
        return digest_id(self.program, self.audience_id, self.period.label)

    @property
    def bus_key(self) -> str:
        return f"{self.program}:{self.audience_id}"


class ReleaseDue(Contract):
    """Time has come for an event held until an instant (an embargo, a newsletter's send time)."""

    kind: Literal["release"] = "release"
    program: ProgramId
    event_id: UUID
    due_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return str(self.event_id)


#: What travels on `schedule.due.v2`: a digest or a release, told apart by `kind`.
ScheduleDue = Annotated[DigestDue | ReleaseDue, Field(discriminator="kind")]
SCHEDULE_DUE_ADAPTER: TypeAdapter[ScheduleDue] = TypeAdapter(ScheduleDue)
#: The version the schedule topic carries; `schedule.due.v1` is still read while a rolling upgrade drains it.
SCHEDULE_DUE_VERSION: Final = 2


#: `schedule.due.v1`, one model with optional fields, exactly as it was published (its schema unchanged): read
#: only while a rolling upgrade drains the old topic, and upgraded at once.
class ScheduleDueV1(Contract):
    """Time has come: a target group's digest for a period (`digest`), or an event held until an instant
    (an embargo, a newsletter's send time) may go out (`release`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="ScheduleDue")

    kind: Literal["digest", "release"]
    program: ProgramId
    audience_id: AudienceId | None = None
    period: Period | None = None
    event_id: UUID | None = None
    due_at: AwareDatetime
    requested_by: Literal["schedule", "cli"] = "schedule"

    def upgraded(self) -> DigestDue | ReleaseDue:
        if self.kind == "release" and self.event_id is not None:
            return ReleaseDue(program=self.program, event_id=self.event_id, due_at=self.due_at)
        if self.kind == "digest" and self.audience_id is not None and self.period is not None:
            asker = DigestAsker.OPERATOR if self.requested_by == "cli" else DigestAsker.SCHEDULE
            return DigestDue(program=self.program, audience_id=self.audience_id, period=self.period,
                             due_at=self.due_at, asked_by=asker)
        raise ValueError(f"a {self.kind} names its {'event' if self.kind == 'release' else 'target group and period'}")


def parse_schedule_due(body: bytes | str) -> DigestDue | ReleaseDue:
    """A message of `schedule.due.v2`, or one of `v1` still on the old topic; ValueError (a ValidationError)
    with the current version's reasons when it is neither."""
    try:
        return SCHEDULE_DUE_ADAPTER.validate_json(body)
    except ValidationError as current:
        try:
            return ScheduleDueV1.model_validate_json(body).upgraded()
        except ValueError:
            raise current from None
