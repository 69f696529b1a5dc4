"""Pure: an event's progress from its plan and the outcomes heard so far."""

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from contracts.deliveries import DeliveryPlan
from contracts.lifecycle import EventState, OutcomeStatus, PlanStatus


class ChannelCounts(BaseModel):
    targeted: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = Field(default=0, description="refused for now; tried again at next_attempt_at")
    next_attempt_at: AwareDatetime | None = None


class Progress(BaseModel):
    status: EventState
    groups: dict[str, dict[str, ChannelCounts]]
    totals: dict[str, ChannelCounts]


def event_status(planned: tuple[PlanStatus, DeliveryPlan] | None, counts: dict[tuple[str, str, str], int],
                 next_attempts: dict[tuple[str, str], datetime] | None = None, scheduled: bool = False) -> Progress:
    """accepted (not planned yet) / embargoed (or, for a newsletter held for its send time, scheduled) /
    delivering / delivered, with counts per group and channel.

    `planned` is the plan's status (planned | embargoed) and the plan; `counts` maps (audience, channel,
    outcome status) to how many deliveries are so; `next_attempts` (audience, channel) to the earliest next
    attempt of its deferred ones. Delivered means every targeted delivery was sent or failed.
    """
    next_attempts = next_attempts or {}
    if planned is None:
        return Progress(status=EventState.ACCEPTED, groups={}, totals={})
    plan_status, plan = planned
    groups: dict[str, dict[str, ChannelCounts]] = {}
    for aid, channels in plan.targeted.items():
        for channel, targeted in channels.items():
            groups.setdefault(aid, {})[channel] = ChannelCounts(
                targeted=targeted, sent=counts.get((aid, channel, OutcomeStatus.SENT), 0),
                failed=counts.get((aid, channel, OutcomeStatus.FAILED), 0),
                deferred=counts.get((aid, channel, OutcomeStatus.DEFERRED), 0),
                next_attempt_at=next_attempts.get((aid, channel)))
    state: EventState
    if plan_status is PlanStatus.EMBARGOED:
        state = EventState.SCHEDULED if scheduled else EventState.EMBARGOED
    else:
        done = all(c.sent + c.failed >= c.targeted for ch in groups.values() for c in ch.values())
        state = EventState.DELIVERED if done else EventState.DELIVERING
    return Progress(status=state, groups=groups, totals=_totals(groups))


def _totals(groups: dict[str, dict[str, ChannelCounts]]) -> dict[str, ChannelCounts]:
    totals: dict[str, ChannelCounts] = {}
    for channels in groups.values():
        for channel, c in channels.items():
            t = totals.setdefault(channel, ChannelCounts())
            t.targeted += c.targeted
            t.sent += c.sent
            t.failed += c.failed
            t.deferred += c.deferred
            if c.next_attempt_at is not None and (t.next_attempt_at is None or c.next_attempt_at < t.next_attempt_at):
                t.next_attempt_at = c.next_attempt_at
    return totals
