"""From one event to an explainable delivery plan: which groups, which channels, which people, and why.

Pure: the directory, the programme and the channel registry come in as values; nothing here does I/O.
Planning follows each channel's reach, never its name: person channels (email) get the members left
after rule 8, group channels (Teams) one delivery per group, programme-wide channels (the intranet) one
per event.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts.channels import CHANNELS, ChannelSpec, Reach
from contracts.deliveries import DeliveryPlan, PlannedGroup, RefusedGroup
from contracts.events import Event
from programs import Audience, Program
from services.common.subscriptions import Unprocessable
from services.tailor import policy
from services.tailor.directory import Recipient, keep_ids, select_members


class UnknownAudienceError(Unprocessable, ValueError):
    """An event names a target group its programme does not have."""


#: channel → target (a group id, or for a programme-wide channel the channel's own name) → people
#: (the recipients of a person channel; empty for the others).
Targets = Mapping[str, Mapping[str, Sequence[Recipient]]]
#: channel → target group → the instant its deliveries wait for (rule 10, the group's quiet hours).
Waiting = Mapping[str, Mapping[str, datetime]]


@dataclass(frozen=True)
class Plan:
    contract: DeliveryPlan
    targets: Targets
    audiences: Mapping[str, Audience]
    waiting: Waiting = field(default_factory=dict)
    #: Managers first (`cascade`): target group → the ids of the managers of its people, briefed at once.
    briefed: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def recipients(self, channel: str) -> Mapping[str, Sequence[Recipient]]:
        return self.targets.get(channel, {})


def candidate_audiences(event: Event, program: Program) -> list[Audience]:
    if event.audiences:
        unknown = [a for a in event.audiences if program.audience(a) is None]
        if unknown:
            raise UnknownAudienceError(f"programme {program.program!r} has no target groups {unknown}")
        return [a for a in program.audiences if a.id in event.audiences]
    return [a for a in program.audiences if event.type in a.follows]


def plan_deliveries(event: Event, program: Program, directory: Sequence[Recipient],
                    channels: Mapping[str, ChannelSpec] = CHANNELS,
                    choices: Mapping[str, policy.Choice] | None = None, now: datetime | None = None,
                    undeliverable: Mapping[str, str] | None = None) -> Plan:
    """Decide, for every candidate group, its channels and members, or refuse it with the rule's reason.
    `choices` are people's preferences (rule 9), by person id; `now` the instant it goes out, for the groups'
    quiet hours (rule 10; None: they are not looked at, as for a plan shown without sending); `undeliverable`
    the people whose address bounced (person → why), left out of person channels."""
    choices = choices or {}
    refused: list[RefusedGroup] = []
    chosen: dict[str, tuple[Audience, tuple[str, ...], Sequence[Recipient], list[str]]] = {}
    opted_in: dict[str, dict[str, Sequence[Recipient]]] = {}  # group → person channel → who asked for awareness news
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
        group_channels = policy.channels_for(event, audience, channels, affected)
        members = policy.scope_members(select_members(directory, audience.members), audience, areas)
        if areas is not None and audience.area_scoped:
            reasons.append(f"limited to area {', '.join(sorted(areas))}")
        if not members:
            refused.append(RefusedGroup(audience_id=audience.id, name=audience.name, rule="members",
                                        reason="no recipients in the directory match the group"))
            continue
        if not group_channels:
            refused.append(RefusedGroup(audience_id=audience.id, name=audience.name, rule="channels",
                                        reason="no channel the group allows fits this event"))
            continue
        chosen[audience.id] = (audience, group_channels, members, reasons)
        asked = _by_choice(members, lambda c: policy.awareness_by_email(event, c), choices)
        extra = [c for c in audience.channels if channels[c].reach is Reach.PERSON and c not in group_channels]
        if asked and extra:
            opted_in[audience.id] = {c: asked for c in extra}
            reasons.append(f"{len(asked)} asked for awareness news by email")

    by_id = {aid: entry[0] for aid, entry in chosen.items()}
    targets: dict[str, dict[str, Sequence[Recipient]]] = {}
    bounced: dict[str, dict[str, list[str]]] = {}  # group → person channel → why each left out was (a bounce)
    for name, spec in channels.items():
        if spec.reach is Reach.PERSON:
            wanted = {aid: entry[2] for aid, entry in chosen.items() if name in entry[1]}
            wanted |= {aid: by_channel[name] for aid, by_channel in opted_in.items() if name in by_channel}
            people = policy.assign_highest_tier(
                {aid: _by_choice(members, lambda c: policy.wants(event, c), choices) for aid, members in wanted.items()},
                by_id)
            if undeliverable:
                for aid, members in list(people.items()):
                    kept, why = _without_bounced(members, undeliverable)
                    if why:
                        bounced.setdefault(aid, {})[name] = why
                        people[aid] = kept
            targets[name] = {aid: members for aid, members in people.items() if members}
        elif spec.reach is Reach.GROUP:
            targets[name] = {aid: () for aid, entry in chosen.items() if name in entry[1]}
        elif name in program.publishes_to and policy.on_intranet(event) and chosen:
            targets[name] = {name: ()}
    targets = {name: by_target for name, by_target in targets.items() if by_target}
    waiting: dict[str, dict[str, datetime]] = {}
    if now is not None:
        for name, by_target in targets.items():
            if not channels[name].reach.direct:
                continue  # the intranet is read, never pushed: it has no quiet hours
            for aid in by_target:
                if (until := policy.quiet_until(event, by_id[aid], now)) is not None:
                    waiting.setdefault(name, {})[aid] = until
    briefed: dict[str, list[str]] = {}
    if event.cascade is not None and now is not None:  # managers first: everything to the staff waits
        staff_at = now + timedelta(hours=event.cascade.managers_before_hours)
        for name, by_target in targets.items():
            for target in by_target:
                waiting.setdefault(name, {})[target] = max(waiting.get(name, {}).get(target, staff_at), staff_at)
        briefed = {aid: sorted({m.manager for m in entry[2] if m.manager}) for aid, entry in chosen.items()}

    groups: list[PlannedGroup] = []
    for aid, (audience, group_channels, members, group_reasons) in chosen.items():
        reasons = list(group_reasons)
        for name in group_channels:
            reached = len(targets.get(name, {}).get(aid, ()))
            if channels[name].reach is Reach.PERSON and reached < len(members):
                declined = len(members) - len(_by_choice(members, lambda c: policy.wants(event, c), choices))
                if declined:
                    reasons.append(f"{declined} opted out of newsletters ({name})")
                if skipped := bounced.get(aid, {}).get(name):
                    reasons.append(f"{len(skipped)} left out: their address is undeliverable ({_why(skipped)}) "
                                   f"({name})")
                    declined += len(skipped)
                if len(members) - reached - declined > 0:
                    reasons.append(f"{len(members) - reached - declined} already reached through a higher-tier "
                                   f"group ({name})")
        listed = group_channels + tuple(c for c in opted_in.get(aid, {}) if c not in group_channels)
        pushed = tuple(c for c in listed if channels[c].reach.direct and aid in targets.get(c, {}))
        if now is not None and pushed and (quiet := policy.quiet_reason(event, audience, now, pushed)) is not None:
            reasons.append(quiet)
        if (acknowledgement := policy.acknowledgement_reason(event, program, pushed)) is not None:
            reasons.append(acknowledgement)
        if event.cascade is not None and now is not None:
            reasons.append(policy.cascade_reason(event, len(briefed.get(aid, ())), now))
        groups.append(PlannedGroup(audience_id=aid, name=audience.name, tier=audience.tier.value,
                                   channels=listed, recipients=len(members), reasons=tuple(reasons)))
    contract = DeliveryPlan(event_id=event.event_id, program=event.program, groups=tuple(groups),
                            refused=tuple(refused), targeted=_targeted(targets, channels),
                            embargoed_until=policy.hold_until(event))
    return Plan(contract=contract, targets=targets, audiences=by_id, waiting=waiting, briefed=briefed)


def _by_choice(members: Sequence[Recipient], decide: Callable[[policy.Choice], bool],
               choices: Mapping[str, policy.Choice]) -> Sequence[Recipient]:
    """The members whose choice (rule 9) `decide` keeps. Everyone who chose nothing has the defaults, decided
    once: with no choices made, a group of 100 000 is kept or dropped whole, no person looked at."""
    if not choices:
        return members if decide(policy.NO_CHOICE) else ()
    return keep_ids(members, lambda person_id: decide(choices.get(person_id, policy.NO_CHOICE)))


def _targeted(targets: Targets, channels: Mapping[str, ChannelSpec]) -> dict[str, dict[str, int]]:
    """target → channel → messages to be sent: one per person on a person channel, one otherwise."""
    targeted: dict[str, dict[str, int]] = {}
    for name, by_target in targets.items():
        per_person = channels[name].reach is Reach.PERSON
        for target, people in by_target.items():
            targeted.setdefault(target, {})[name] = len(people) if per_person else 1
    return targeted


def _why(reasons: Sequence[str]) -> str:
    """What left people out, in few words: "hard bounce", "soft bounces", or both."""
    return " or ".join(sorted({"soft bounces" if "soft" in why else "hard bounce" for why in reasons}))


def _without_bounced(members: Sequence[Recipient], undeliverable: Mapping[str, str]
                     ) -> tuple[Sequence[Recipient], list[str]]:
    """The members whose address takes mail, and why each of the others does not."""
    why: list[str] = []

    def deliverable(person_id: str) -> bool:
        reason = undeliverable.get(person_id)
        if reason is not None:
            why.append(reason)
        return reason is None

    return keep_ids(members, deliverable), why
