"""Managers first (`cascade`): when an event marked for it goes out, the managers of the people it reaches get
it at once, by email, with its talking points (samtalsstöd) and their own link to confirm that they took it up
at the workplace meeting; their staff's deliveries wait the set time (`planning`), and go then whether or not
any manager confirmed.

A briefing is one per area of the managers: its id derives from (event, area), so that follow-up can show
confirmed units per area, and a manager gets it once whatever groups their staff are in. Kept until the
channels confirm it, and sent again after a start.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID, uuid5

from contracts.channels import CHANNELS, ChannelSpec
from contracts.deliveries import DeliveryCommand
from contracts.events import Event
from programs import Program
from services.common.bus import Bus
from services.tailor.channels import Envelope, emails
from services.tailor.directory import Recipient
from services.tailor.index import DirectoryIndex
from services.tailor.reminder_store import ReminderStore
from services.tailor.reminders import REMINDER_NAMESPACE, publish_follow_up
from services.tailor.rendering import Renderer

log = logging.getLogger(__name__)


def briefing_id(event_id: UUID, area: str) -> UUID:
    return uuid5(REMINDER_NAMESPACE, f"{event_id}:briefing:{area}")


class Briefings:
    def __init__(self, store: ReminderStore, index: Callable[[], Awaitable[DirectoryIndex]], renderer: Renderer,
                 bus: Bus, clock: Callable[[], datetime],
                 contacts: Callable[[Iterable[str]], Awaitable[dict[str, tuple[str, str]]]],
                 channels: Mapping[str, ChannelSpec] = CHANNELS) -> None:
        self.store = store
        self.index = index
        self.renderer = renderer
        self.bus = bus
        self.clock = clock
        self.contacts = contacts
        self.channels = channels

    async def send(self, event: Event, program: Program, briefed: Mapping[str, Sequence[str]],
                   again: bool = False) -> int:
        """Brief the managers (target group → manager ids), once per area; returns how many managers.
        `again`: a start's repeat of a briefing the channels have not confirmed."""
        if event.cascade is None or not briefed:
            return 0
        index = await self.index()
        managers = index.recipients(m for ids in briefed.values() for m in ids)
        by_area: dict[str, dict[str, list[str]]] = {}
        seen: set[str] = set()
        for group, ids in briefed.items():
            for m in ids:
                if m in managers and m not in seen:  # once, in the first group their staff are in
                    seen.add(m)
                    by_area.setdefault(managers[m].area, {}).setdefault(group, []).append(m)
        contacts = await self.contacts(seen)
        sent_already = await self.store.sent(briefing_id(event.event_id, a) for a in by_area)
        for area, targets in sorted(by_area.items()):
            bid = briefing_id(event.event_id, area)
            if str(bid) in sent_already and not again:
                continue  # a redelivered event: briefed already
            commands: list[DeliveryCommand] = []
            for group, ids in targets.items():
                audience = program.audience(group)
                if audience is None:
                    continue
                envelope: Envelope = {"event_id": bid, "program": program.program, "audience_id": group,
                                      "correlation_id": event.correlation_id}
                people = [Recipient(m, contacts[m][0], contacts[m][1]) for m in ids if m in contacts]
                commands += emails(envelope, program, self.renderer.briefing(event, program, audience), people,
                                   bulk=False)
            if not again:
                await self.store.record(bid, event.event_id, self.clock(), targets,
                                        sum(c.deliveries for c in commands), kind="briefing")
            await publish_follow_up(self.bus, self.channels, event, bid, commands, self.clock(), "briefing",
                                    area or None)
        log.info("managers briefed", extra={"event_id": str(event.event_id), "managers": len(seen),
                                            "areas": len(by_area)})
        return len(seen)

    async def recover(self, programs: Mapping[str, Program]) -> None:
        """After a start: every briefing the channels have not confirmed, again to its managers."""
        for sent in await self.store.unconfirmed():
            if sent.kind == "briefing" and (program := programs.get(sent.event.program)) is not None:
                await self.send(sent.event, program, sent.targets, again=True)
