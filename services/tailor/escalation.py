"""Escalation of must-know news that was not acknowledged in time (the programme's
`acknowledgement.escalate_after_hours`, N): a group the news reached only by Teams gets it by email after N
hours, to those who have not acknowledged; after N more hours (or at N, for a group reached by email) the
manager of each person who still has not gets a short notice naming the message and those of their staff,
and nothing else about them.

Pure here: which steps, when, for which groups; and the notices. The tailor's `Reminders` sends each step when
the scheduler says its time has come, and says every step in the plan, which the event's status shows.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from contracts.channels import ChannelSpec, Reach
from contracts.deliveries import SendEmail
from contracts.events import Event
from programs import Audience, Program
from services.tailor.channels import Envelope, emails
from services.tailor.directory import Recipient
from services.tailor.rendering import Renderer

StepKind = Literal["email", "managers"]

#: What each step is called in the plan.
STEP_WORDS = {"email": "the news again by email", "managers": "a notice to their managers"}


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: StepKind
    groups: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "kind": self.kind, "groups": list(self.groups)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> "Step":
        groups = data["groups"]
        assert isinstance(groups, list)
        kind: StepKind = "managers" if data["kind"] == "managers" else "email"
        return cls(datetime.fromisoformat(str(data["at"])), kind, tuple(str(g) for g in groups))


def escalation_steps(targets: Mapping[str, Mapping[str, object]], channels: Mapping[str, ChannelSpec],
                     hours: int | None, now: datetime) -> list[Step]:
    """The steps for news that went out at `now` to `targets` (channel → target groups)."""
    if hours is None:
        return []
    by_person = {g for name, by_target in targets.items() if name in channels
                 and channels[name].reach is Reach.PERSON for g in by_target}
    by_group = {g for name, by_target in targets.items() if name in channels
                and channels[name].reach is Reach.GROUP for g in by_target}
    teams_only = tuple(sorted(by_group - by_person))
    after = timedelta(hours=hours)
    steps = []
    if teams_only:
        steps.append(Step(now + after, "email", teams_only))
        steps.append(Step(now + 2 * after, "managers", teams_only))
    if by_person:
        steps.append(Step(now + after, "managers", tuple(sorted(by_person))))
    return sorted(steps, key=lambda s: (s.at, s.kind))


def manager_notices(event: Event, program: Program, audience: Audience, notice_id: UUID,
                    staff_by_manager: Mapping[str, Sequence[str]], managers: Mapping[str, tuple[str, str]],
                    renderer: Renderer) -> Iterator[SendEmail]:
    """One short notice per manager: the message, and the names of their staff who have not acknowledged it.
    `managers`: manager id → (name, address)."""
    envelope: Envelope = {"event_id": notice_id, "program": program.program, "audience_id": audience.id,
                          "correlation_id": event.correlation_id}
    for manager_id, names in sorted(staff_by_manager.items()):
        if manager_id not in managers or not names:
            continue
        name, address = managers[manager_id]
        rendered = renderer.manager_notice(event, program, audience, sorted(names))
        yield from emails(envelope, program, rendered, [Recipient(manager_id, name, address)], bulk=False)
