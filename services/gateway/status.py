"""Pure: an event's progress from its plan and the outcomes heard so far."""

from typing import Literal

from pydantic import BaseModel

from contracts.deliveries import DeliveryPlan

State = Literal["accepted", "embargoed", "delivering", "delivered"]


class ChannelCounts(BaseModel):
    targeted: int = 0
    sent: int = 0
    failed: int = 0


class Progress(BaseModel):
    status: State
    groups: dict[str, dict[str, ChannelCounts]]
    totals: dict[str, ChannelCounts]


def event_status(planned: tuple[str, DeliveryPlan] | None, counts: dict[tuple[str, str, str], int]) -> Progress:
    """accepted (not planned yet) / embargoed / delivering / delivered, with counts per group and channel.

    `planned` is the plan's status (planned | embargoed) and the plan; `counts` maps (audience, channel,
    outcome status) to how many deliveries ended so.
    """
    if planned is None:
        return Progress(status="accepted", groups={}, totals={})
    plan_status, plan = planned
    groups: dict[str, dict[str, ChannelCounts]] = {}
    for aid, channels in plan.targeted.items():
        for channel, targeted in channels.items():
            groups.setdefault(aid, {})[channel] = ChannelCounts(
                targeted=targeted, sent=counts.get((aid, channel, "sent"), 0),
                failed=counts.get((aid, channel, "failed"), 0))
    state: State
    if plan_status == "embargoed":
        state = "embargoed"
    else:
        done = all(c.sent + c.failed >= c.targeted for ch in groups.values() for c in ch.values())
        state = "delivered" if done else "delivering"
    return Progress(status=state, groups=groups, totals=_totals(groups))


def _totals(groups: dict[str, dict[str, ChannelCounts]]) -> dict[str, ChannelCounts]:
    totals: dict[str, ChannelCounts] = {}
    for channels in groups.values():
        for channel, c in channels.items():
            t = totals.setdefault(channel, ChannelCounts())
            t.targeted += c.targeted
            t.sent += c.sent
            t.failed += c.failed
    return totals
