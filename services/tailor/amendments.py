"""Corrections and retractions (DESIGN.md, Governance): an amendment reaches exactly those its original reached,
on the channels it reached them by. Pure: the original's record comes in as values.

The original is the first event of a chain of amendments (a correction of a correction amends the same
original). What it reached is what the tailor planned for it (`targets`); each channel then delivers an
amendment only where its own ledger says the original was delivered, and after it (`follows`).
"""

from collections.abc import Mapping, Sequence

from contracts.channels import CHANNELS, ChannelSpec, Reach
from contracts.deliveries import DeliveryPlan, PlannedGroup
from contracts.events import AMENDMENTS, Event
from programs import Program
from services.tailor.directory import Recipient
from services.tailor.planning import Plan

#: Why an amendment reaches a group (worded in Swedish by the console).
REASON = "reached by the event it amends"


def is_amendment(event: Event) -> bool:
    return event.type in AMENDMENTS


def amendment_plan(amendment: Event, original: DeliveryPlan, targets: Mapping[str, Mapping[str, Sequence[str]]],
                   directory: Mapping[str, Recipient], program: Program,
                   channels: Mapping[str, ChannelSpec] = CHANNELS) -> Plan:
    """The plan of an amendment: the original's targets, channel by channel, with the people of a person
    channel found in the directory (someone who has left it since cannot be reached)."""
    reached: dict[str, dict[str, list[Recipient]]] = {}
    for channel, by_target in targets.items():
        for target, ids in by_target.items():
            reached.setdefault(channel, {})[target] = [directory[i] for i in ids if i in directory]
    personal = {name for name, spec in channels.items() if spec.reach is Reach.PERSON}
    targeted: dict[str, dict[str, int]] = {}
    for channel, found in reached.items():
        for target, people in found.items():
            targeted.setdefault(target, {})[channel] = len(people) if channel in personal else 1
    groups = tuple(PlannedGroup(audience_id=g.audience_id, name=g.name, tier=g.tier,
                                channels=tuple(c for c in g.channels if g.audience_id in reached.get(c, {})),
                                recipients=max((len(reached.get(c, {}).get(g.audience_id, ())) for c in personal),
                                               default=0),
                                reasons=(REASON,))
                   for g in original.groups)
    contract = DeliveryPlan(event_id=amendment.event_id, program=amendment.program, groups=groups, refused=(),
                            targeted=targeted)
    audiences = {g.audience_id: a for g in groups if (a := program.audience(g.audience_id)) is not None}
    return Plan(contract=contract, targets=reached, audiences=audiences)
