"""The policy rules of the design (eight) and of people (9, 10), as pure functions. Each is tested on its own.

1. must_know → direct channels plus intranet; awareness → intranet (and digest) only.
2. confidential → only cleared groups, never intranet, never external; internal → never external.
3. embargo_until → nothing leaves before that instant.
4. The programme is always the sender.
5. The acronym's first mention in every message reads in its expanded form.
6. golive.milestone → the area's staff and municipalities plus the primary groups.
7. A clinical-leadership decision alerts the most affected at once; everyone else by intranet/digest.
8. One message per person per event and channel, in the variant of their highest-tier group.
9. A person's choices: newsletters and digests can be opted out of, awareness news opted into by email;
   must-know news cannot be opted out of.
10. A group's quiet hours: nothing but a must-know alert is pushed to its people in them; the rest waits
   until they end.
"""

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from contracts.channels import ChannelSpec
from contracts.events import DesignDecisionMade, Event, GoLiveMilestoneReached, Importance, Sensitivity, event_type
from contracts.lifecycle import hold_of
from programs import TIER_RANK, Audience, Program, Sender, Tier
from services.tailor.directory import Recipient, keep, keep_ids


@dataclass(frozen=True)
class Refusal:
    rule: str
    reason: str


# Rule 1 and rule 7 -----------------------------------------------------------------------------

def channels_for(event: Event, audience: Audience, channels: Mapping[str, ChannelSpec],
                 most_affected: bool = True) -> tuple[str, ...]:
    """The channels an event uses for a group: direct ones (to people, to the group) only for must-know
    news to those concerned; programme-wide ones (the intranet) for anything not confidential."""
    direct = event.importance is Importance.MUST_KNOW and most_affected
    chosen = [c for c in audience.channels if channels[c].reach.direct and direct]
    chosen += [c for c in audience.channels if not channels[c].reach.direct and on_intranet(event)]
    return tuple(chosen)


def on_intranet(event: Event) -> bool:
    """Rule 2: programme-wide channels (the intranet and its kind) never carry confidential matters."""
    return event.sensitivity is not Sensitivity.CONFIDENTIAL


def is_clinical_leadership(event: Event) -> bool:
    return isinstance(event, DesignDecisionMade) and event.payload.level == "clinical_leadership"


def most_affected(event: Event, audience: Audience) -> bool:
    """Rule 7: for a clinical-leadership decision, a group is most affected when it selects an
    affected profession. Every other event treats every targeted group as concerned."""
    if not isinstance(event, DesignDecisionMade) or event.payload.level != "clinical_leadership":
        return True
    affected = {p.casefold() for p in event.payload.affected_professions}
    if not affected:
        return True
    return any(p.casefold() in affected for p in audience.members.get("profession", ()))


# Rule 2 ----------------------------------------------------------------------------------------

def sensitivity_refusal(event: Event, audience: Audience) -> Refusal | None:
    if event.sensitivity is Sensitivity.CONFIDENTIAL:
        if audience.external:
            return Refusal("sensitivity", "confidential: never to external groups")
        if not audience.cleared_for_confidential:
            return Refusal("sensitivity", "confidential: group is not cleared for confidential matters")
    if event.sensitivity is Sensitivity.INTERNAL and audience.external:
        return Refusal("sensitivity", "internal: never to external groups")
    return None


# Rule 3 ----------------------------------------------------------------------------------------

def hold_until(event: Event) -> datetime | None:
    """The instant before which nothing of the event leaves (`contracts.lifecycle.hold_of`)."""
    hold = hold_of(event)
    return hold.until if hold is not None else None


def is_embargoed(event: Event, now: datetime) -> bool:
    until = hold_until(event)
    return until is not None and until > now


# Rule 4 ----------------------------------------------------------------------------------------

def sender_for(program: Program) -> Sender:
    """Sub-projects never send in their own name; the programme does."""
    return program.sender


# Rule 5 ----------------------------------------------------------------------------------------

def expand_first_mention(text: str, acronym: str, first_mention: str) -> str:
    """Make the acronym's first mention read in its expanded form, whatever the template wrote."""
    expanded_at = text.find(first_mention)
    bare = re.search(rf"(?<![\w-]){re.escape(acronym)}(?![\w-])", text)
    if bare is None or (expanded_at != -1 and expanded_at <= bare.start()):
        return text
    return text[: bare.start()] + first_mention + text[bare.end():]


_TAG = re.compile(r"(<[^>]*>)")


def expand_first_mention_html(html: str, acronym: str, first_mention: str) -> str:
    """Rule 5 for HTML: looks only at the visible text of the body, never inside tags."""
    head, sep, body = html.partition("<body")
    if not sep:
        head, body = "", html
    parts = _TAG.split(body)
    for i, part in enumerate(parts):
        if part.startswith("<") or not part.strip():
            continue
        if first_mention in part or re.search(rf"(?<![\w-]){re.escape(acronym)}(?![\w-])", part):
            parts[i] = expand_first_mention(part, acronym, first_mention)
            break
    return head + sep + "".join(parts)


# Rule 6 ----------------------------------------------------------------------------------------

def area_scope(event: Event) -> frozenset[str] | None:
    """The areas an event is limited to, or None when it concerns every area."""
    areas = set(event.regions or ())
    if isinstance(event, GoLiveMilestoneReached):
        areas.add(event.payload.area)
    return frozenset(areas) if areas else None


def golive_refusal(event: Event, audience: Audience) -> Refusal | None:
    if isinstance(event, GoLiveMilestoneReached) and audience.tier is not Tier.PRIMARY and not audience.area_scoped:
        return Refusal("golive", "go-live reaches the area's staff and municipalities and the primary groups")
    return None


def scope_members(members: Sequence[Recipient], audience: Audience, areas: frozenset[str] | None,
                  ) -> Sequence[Recipient]:
    """Area-scoped groups (staff, municipalities) hear only about their own area; others about all.

    Area scoping wins over tier: the municipalities are a primary group, yet a go-live reaches only
    the municipalities of its area.
    """
    if areas is None or not audience.area_scoped:
        return members
    return keep(members, lambda m: m.area in areas)


# Rule 8 ----------------------------------------------------------------------------------------

def assign_highest_tier(
    memberships: Mapping[str, Sequence[Recipient]], audiences: Mapping[str, Audience]
) -> dict[str, Sequence[Recipient]]:
    """Give each person to exactly one group: their highest-tier one (ties: configuration order)."""
    order = {aid: i for i, aid in enumerate(audiences)}
    ranked = sorted(memberships, key=lambda aid: (TIER_RANK[audiences[aid].tier], order[aid]))
    taken: set[str] = set()
    assigned: dict[str, Sequence[Recipient]] = {}
    for n, aid in enumerate(ranked):
        mine = keep_ids(memberships[aid], lambda i: i not in taken) if taken else memberships[aid]
        if n < len(ranked) - 1:  # the last group's people are taken by no one after it (a fan-out's 100 000)
            taken.update(r.id for r in mine)
        assigned[aid] = mine
    return assigned


def one_digest_each(audience: Audience, people: Sequence[Recipient], cadence: str,
                    others: Mapping[str, tuple[Audience, AbstractSet[str]]], order: Sequence[str],
                    choices: Mapping[str, "Choice"]) -> dict[tuple[str, ...], list[Recipient]]:
    """Rule 8 across digests: a person in several groups with a digest at `cadence` (as each of them gives it to
    that person, rule 9) gets one, the digest of their highest-tier such group (ties: configuration `order`),
    with the sections of every one of them. Of `people` (the members `audience`'s digest would reach), those
    whose digest it is, by the other groups whose sections it also carries; the rest get theirs elsewhere.
    `others`: each other group with a digest, with the ids of its members."""
    place = {aid: i for i, aid in enumerate(order)}

    def rank(a: Audience) -> tuple[int, int]:
        return TIER_RANK[a.tier], place.get(a.id, len(place))

    mine = rank(audience)
    by_choice: dict[Choice, list[tuple[bool, str, AbstractSet[str]]]] = {}
    buckets: dict[tuple[str, ...], list[Recipient]] = {}
    for person in people:
        choice = choices.get(person.id, NO_CHOICE)
        relevant = by_choice.get(choice)
        if relevant is None:  # the groups whose digest this choice makes due at `cadence`, highest first
            relevant = by_choice[choice] = [
                (rank(other) < mine, aid, members) for aid, (other, members) in
                sorted(others.items(), key=lambda item: rank(item[1][0]))
                if aid != audience.id and digest_cadence(other.digest, choice) == cadence]
        also: list[str] = []
        for higher, aid, members in relevant:
            if person.id in members:
                if higher:
                    break
                also.append(aid)
        else:
            buckets.setdefault(tuple(also), []).append(person)
    return buckets


# Rule 9 ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """What a person chose in the preference centre (the defaults: the group's cadence, newsletters yes,
    awareness news on the intranet and in the digest only)."""

    digest: str = "group"  # group | weekly | monthly | none
    newsletters: bool = True
    awareness_email: bool = False


NO_CHOICE = Choice()


def wants(event: Event, choice: Choice) -> bool:
    """Whether a person who made `choice` gets `event` on a person channel they are planned for: a
    newsletter can be opted out of; must-know news cannot."""
    return choice.newsletters or not event_type(event.type).bulk


def awareness_by_email(event: Event, choice: Choice) -> bool:
    """Awareness news reaches a person by email too when they asked for it (never confidential matters)."""
    return (event.importance is Importance.AWARENESS and choice.awareness_email
            and event.sensitivity is not Sensitivity.CONFIDENTIAL)


def digest_cadence(group_cadence: str, choice: Choice) -> str:
    """The cadence a person gets a group's digest at: the group's, unless they chose another (or none)."""
    return group_cadence if choice.digest == "group" else choice.digest


# Rule 10 ---------------------------------------------------------------------------------------

def is_alert(event: Event) -> bool:
    """A must-know alert: must-know news that is not bulk mail (a newsletter waits like awareness news)."""
    return event.importance is Importance.MUST_KNOW and not event_type(event.type).bulk


def quiet_until(event: Event, audience: Audience, now: datetime) -> datetime | None:
    """Until when the event's direct deliveries to the group wait: the end of the group's quiet hours when
    `now` falls in them and the event is no alert; None when they go now."""
    if audience.quiet_hours is None or is_alert(event):
        return None
    return audience.quiet_hours.ends_after(now)


def quiet_reason(event: Event, audience: Audience, now: datetime, pushed: Sequence[str]) -> str | None:
    """What the plan says of rule 10 for a group pushed to on the channels `pushed`, when its quiet hours are
    on at `now`."""
    quiet = audience.quiet_hours
    if quiet is None or not quiet.contains(now):
        return None
    until = quiet_until(event, audience, now)
    if until is None:
        return f"must-know alert: sent at once despite the quiet hours {quiet} (rule 10)"
    return (f"quiet hours {quiet}: {', '.join(pushed)} waits until "
            f"{until.astimezone(quiet.zone):%Y-%m-%d %H:%M} (rule 10)")


# Acknowledgement ---------------------------------------------------------------------------------------------

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def acknowledgement_reason(event: Event, program: Program, pushed: Sequence[str]) -> str | None:
    """What the plan says of an acknowledgement the event asks for, for a group it reaches on `pushed`."""
    if event.acknowledge_by is None or not pushed:
        return None
    rules = program.acknowledgement
    said = [f"asks to be acknowledged by {event.acknowledge_by.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}"]
    by_email = "email" in pushed
    if by_email:
        hours = ", ".join(f"{h} h" for h in rules.reminders_before_hours)
        said.append(f"reminders {hours} before, by email, to those who have not")
    if rules.escalate_after_hours is not None:
        steps = "their managers are told" if by_email else "by email, then their managers are told"
        said.append(f"not acknowledged within {rules.escalate_after_hours} h: {steps}")
    return "; ".join(said)


# Managers first ----------------------------------------------------------------------------------------------

def cascade_reason(event: Event, managers: int, now: datetime) -> str:
    """What the plan says of managers first, for a group whose people have `managers` managers."""
    assert event.cascade is not None
    staff_at = (now + timedelta(hours=event.cascade.managers_before_hours)).astimezone(STOCKHOLM)
    if not managers:
        return f"managers first: no managers of this group in the directory; its people hear it {staff_at:%Y-%m-%d %H:%M}"
    return (f"managers first: {managers} managers get it now, with talking points; their staff "
            f"{staff_at:%Y-%m-%d %H:%M}, whether or not the managers confirmed")
