"""From one event to an explainable delivery plan: which groups, which channels, which people, and why.

Pure: the directory and the programme come in as values; nothing here does I/O.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts.deliveries import INTRANET_AUDIENCE, DeliveryPlan, PlannedGroup, RefusedGroup
from contracts.events import Event
from services.tailor import policy
from services.tailor.directory import Recipient, select_members
from services.tailor.programs import Audience, Program


class UnknownAudienceError(ValueError):
    """An event names a target group its programme does not have."""


@dataclass(frozen=True)
class Plan:
    contract: DeliveryPlan
    emails: Mapping[str, Sequence[Recipient]]
    teams: Mapping[str, str]
    intranet: bool
    audiences: Mapping[str, Audience]


def candidate_audiences(event: Event, program: Program) -> list[Audience]:
    if event.audiences:
        unknown = [a for a in event.audiences if program.audience(a) is None]
        if unknown:
            raise UnknownAudienceError(f"programme {program.program!r} has no target groups {unknown}")
        return [a for a in program.audiences if a.id in event.audiences]
    return [a for a in program.audiences if event.type in a.follows]


def plan_deliveries(
    event: Event, program: Program, directory: Sequence[Recipient], webhooks: Mapping[str, str]
) -> Plan:
    """Decide, for every candidate group, its channels and members, or refuse it with the rule's reason."""
    refused: list[RefusedGroup] = []
    chosen: dict[str, tuple[Audience, tuple[str, ...], list[Recipient], list[str]]] = {}
    areas = policy.area_scope(event)
    for audience in candidate_audiences(event, program):
        refusal = policy.sensitivity_refusal(event, audience) or policy.golive_refusal(event, audience)
        if refusal is not None:
            refused.append(RefusedGroup(audience_id=audience.id, name=audience.name, rule=refusal.rule,
                                        reason=refusal.reason))
            continue
        reasons = [f"{'explicitly targeted' if event.audiences else 'follows ' + event.type}",
                   f"{event.importance.value}"]
        affected = policy.most_affected(event, audience)
        if not affected:
            reasons.append("clinical leadership: not among the most affected, intranet and digest only")
        elif policy.is_clinical_leadership(event):
            reasons.append("clinical leadership: among the most affected, alerted at once")
        channels = list(policy.channels_for(event, audience, affected))
        if "teams" in channels and audience.id not in webhooks:
            channels.remove("teams")
            reasons.append("no Teams webhook configured for this group")
        members = policy.scope_members(select_members(directory, audience.members), audience, areas)
        if areas is not None and audience.area_scoped:
            reasons.append(f"limited to area {', '.join(sorted(areas))}")
        if not members:
            refused.append(RefusedGroup(audience_id=audience.id, name=audience.name, rule="members",
                                        reason="no recipients in the directory match the group"))
            continue
        if not channels:
            refused.append(RefusedGroup(audience_id=audience.id, name=audience.name, rule="channels",
                                        reason="no channel the group allows fits this event"))
            continue
        chosen[audience.id] = (audience, tuple(channels), members, reasons)

    by_id = {aid: entry[0] for aid, entry in chosen.items()}
    emails = policy.assign_highest_tier(
        {aid: entry[2] for aid, entry in chosen.items() if "email" in entry[1]}, by_id
    )
    teams = {aid: webhooks[aid] for aid, entry in chosen.items() if "teams" in entry[1]}
    intranet = program.intranet and policy.on_intranet(event) and bool(chosen)
    targeted: dict[str, dict[str, int]] = {}
    groups: list[PlannedGroup] = []
    for aid, (audience, group_channels, members, group_reasons) in chosen.items():
        reasons = list(group_reasons)
        counts = {}
        if aid in emails:
            counts["email"] = len(emails[aid])
            if len(emails[aid]) < len(members):
                reasons.append(f"{len(members) - len(emails[aid])} already reached through a higher-tier group")
        if aid in teams:
            counts["teams"] = 1
        if counts:
            targeted[aid] = counts
        groups.append(PlannedGroup(audience_id=aid, name=audience.name, tier=audience.tier.value,
                                   channels=group_channels, recipients=len(members), reasons=tuple(reasons)))
    if intranet:
        targeted[INTRANET_AUDIENCE] = {"intranet": 1}
    contract = DeliveryPlan(event_id=event.event_id, program=event.program, groups=tuple(groups),
                            refused=tuple(refused), targeted=targeted, embargoed_until=event.embargo_until)
    return Plan(contract=contract, emails=emails, teams=teams, intranet=intranet, audiences=by_id)
