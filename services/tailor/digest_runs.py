"""The tailor's digest use case: when the scheduler says a group's period is due, who gets the digest, in
which variant and with which sections, and the commands that carry it.

One digest per person and period (rule 8 across digests): a person in several groups with a digest at the
same cadence gets the one of their highest-tier group, with the sections of all of them; the other groups'
digests leave them out. The group's own channel (Teams) and the month's intranet item are the group's and
the programme's, as before.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from contracts import topics
from contracts.channels import ChannelSpec, Reach
from contracts.deliveries import DeliveryCommand, DigestSent
from contracts.events import Event
from contracts.schedule import DigestDue, Period, digest_id
from programs import Audience, Program
from programs.labels import sv_period
from services.common.bus import Bus
from services.tailor import policy
from services.tailor.channels import DigestComposer, DigestComposition
from services.tailor.digests import INTRANET_READER, Digest, build_digest, heading
from services.tailor.directory import Recipient, member_filter
from services.tailor.planning import UnknownAudienceError
from services.tailor.rendering import Renderer
from services.tailor.store import TailorStore

log = logging.getLogger(__name__)


class DigestRuns:
    def __init__(self, program: Callable[[str], Program], renderer: Renderer, store: TailorStore, bus: Bus,
                 clock: Callable[[], datetime], channels: Mapping[str, ChannelSpec],
                 composers: Mapping[str, DigestComposer],
                 addressed: Callable[[DeliveryCommand], Awaitable[DeliveryCommand | None]],
                 undeliverable: Callable[[], Awaitable[Mapping[str, str]]] | None = None) -> None:
        self.program = program
        self.renderer = renderer
        self.store = store
        self.bus = bus
        self.clock = clock
        self.channels = channels
        self.composers = composers
        self.addressed = addressed  # an email command with its recipients' addresses, or None when none is left
        self.undeliverable = undeliverable  # whose address bounced: left out of the mail

    async def send(self, due: DigestDue) -> Digest:
        """A target group's digest for the period the scheduler names: by email to each member whose digest it
        is, to the group's Teams channel, and (monthly) to the intranet. Its id derives from (programme, group,
        period), so the channels' ledgers make a repeated period send nothing twice."""
        program = self.program(due.program)
        audience = program.audience(due.audience_id)
        if audience is None:
            raise UnknownAudienceError(f"programme {due.program!r} has no target group {due.audience_id!r}")
        period = due.period
        history = await self.store.published_between(program.program, datetime(2000, 1, 1, tzinfo=UTC), period.end)
        in_period = [e for e in history if e.published_at and e.published_at >= period.start]
        digest = build_digest(program, audience, period, sv_period(period.label), in_period, history)
        by_person = any((spec := self.channels.get(name)) is not None and spec.reach is Reach.PERSON
                        and name in self.composers for name in audience.channels)
        readers = await self._readers(program, audience, digest, due) if by_person else {}
        on_group_cadence = due.asked_by.every_member or audience.digest == _cadence(digest)
        now = self.clock()
        sends: list[tuple[str, DeliveryCommand]] = []
        for name in audience.channels:
            composer = self.composers.get(name)
            spec = self.channels.get(name)
            if composer is None or spec is None or spec.reach is Reach.PROGRAMME:
                continue
            if spec.reach is Reach.PERSON:
                for also, people in readers.items():
                    variant = digest if not also else _with_sections_of(
                        also, program, audience, period, in_period, history)
                    target = DigestComposition(variant, audience.id, people, now)
                    sends += [(spec.topic, c) for c in composer.digest(target, self.renderer)]
            elif on_group_cadence:  # the group's own channel hears the group's cadence only
                target = DigestComposition(digest, audience.id, (), now)
                sends += [(spec.topic, c) for c in composer.digest(target, self.renderer)]
        if digest.monthly and on_group_cadence:  # the month's summary on the programme-wide channels, one item for everyone
            whole = build_digest(program, INTRANET_READER, period, sv_period(period.label), in_period, history)
            for name in program.publishes_to:
                composer = self.composers.get(name)
                if composer is not None:
                    item = replace(whole, id=digest_id(program.program, name, period.label))
                    sends += [(self.channels[name].topic, c)
                              for c in composer.digest(DigestComposition(item, name, (), now), self.renderer)]
        # Recorded before it is emitted: a crash midway is made whole by `recover` (the ledgers send nothing
        # twice). The deliveries it waits for: each person's, and the group's own channel's.
        sends = [(topic, command) for topic, composed in sends if (command := await self.addressed(composed)) is not None]
        expected = sum(c.deliveries for _, c in sends if c.event_id == digest.id)
        await self.store.record_digest(due, expected)
        await asyncio.gather(*(self.bus.publish(topic, command, command.bus_key) for topic, command in sends))
        await self._announce(program, period.label, [c for _, c in sends], digest.id,
                             f"{heading(digest)} – {audience.name}", heading(digest), now)
        log.info("digest sent", extra={"program": program.program, "audience_id": audience.id,
                                       "period": period.label, "quiet": digest.is_quiet,
                                       "people": sum(len(p) for p in readers.values()), "commands": len(sends)})
        return digest

    async def _readers(self, program: Program, audience: Audience, digest: Digest,
                       due: DigestDue) -> dict[tuple[str, ...], list[Recipient]]:
        """Who gets the group's digest by a person channel, by the other groups whose sections theirs carries
        too. Rule 9: each member at the cadence they chose (the group's by default), or not at all. Rule 8: only
        those whose highest-tier group with a digest at this cadence is this one. A digest asked for by hand
        goes to every member who has not declined digests, as the group's alone."""
        cadence, asked = _cadence(digest), due.asked_by.every_member
        choices = await self.store.choices(program.program)
        index = await self.store.load_index()
        bounced = await self.undeliverable() if self.undeliverable is not None else {}
        people = [m for m in index.members(audience.members)
                  if (cadence_of := policy.digest_cadence(audience.digest, choices.get(m.id, policy.NO_CHOICE)))
                  != "none" and (asked or cadence_of == cadence) and m.id not in bounced]
        if asked or not people:
            return {(): people} if people else {}
        others = _other_digest_groups(program, audience, people)
        return policy.one_digest_each(audience, people, cadence, others, [a.id for a in program.audiences], choices)

    async def _announce(self, program: Program, period: str, commands: list[DeliveryCommand], group_digest: UUID,
                        group_title: str, title: str, now: datetime) -> None:
        """Say what each digest sent (the group's, and the month's programme-wide one) targeted, per channel:
        the follow-up counts digests too."""
        targeted: dict[tuple[UUID, str], dict[str, int]] = {}
        for c in commands:
            by_channel = targeted.setdefault((c.event_id, c.audience_id), {})
            by_channel[c.channel] = by_channel.get(c.channel, 0) + c.deliveries
        for (item_id, target), by_channel in targeted.items():
            sent = DigestSent(digest_id=item_id, program=program.program, audience_id=target, period=period,
                              title=group_title if item_id == group_digest else title, sent_at=now, targeted=by_channel)
            await self.bus.publish(topics.DIGEST_SENT, sent, sent.bus_key)


def _cadence(digest: Digest) -> str:
    return "monthly" if digest.monthly else "weekly"


def _other_digest_groups(program: Program, audience: Audience,
                         people: Sequence[Recipient]) -> dict[str, tuple[Audience, frozenset[str]]]:
    """Every other group of the programme that has a digest, with those of `people` who are its members: the
    group's readers tested against each selector, never a staff group of 40 000 selected whole."""
    groups = [a for a in program.audiences if a.id != audience.id and a.digest != "none"]
    return {a.id: (a, frozenset(p.id for p in people if test(p))) for a in groups
            for test in (member_filter(a.members),)}


def _with_sections_of(also: Sequence[str], program: Program, audience: Audience, period: Period,
                      in_period: Sequence[Event], history: Sequence[Event]) -> Digest:
    """The group's digest in its own variant, carrying the sections of the readers' other groups too."""
    groups = [a for aid in also if (a := program.audience(aid)) is not None]
    return build_digest(program, audience, period, sv_period(period.label), in_period, history, also=groups)
