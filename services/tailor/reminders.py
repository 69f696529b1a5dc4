"""Reminders of must-know news that asks to be acknowledged (`acknowledge_by`): at set times before the
deadline (the programme's `acknowledgement.reminders_before_hours`), a reminder by email to exactly those the
news reached by email who have not acknowledged it by then.

Time is the scheduler's: the tailor tells it each reminder's instant (`plans.deliveries_scheduled`, reason
"reminder") and, when the scheduler says the instant has come, sends what is due by its own clock and record.
A reminder's id derives from (event, instant): the channels' ledgers send each person each reminder once, and
it follows the event (a channel sends it only to whom the event went). Each reminder is kept until the
channels confirm it, and sent again after a start with exactly whom it reminded.
"""

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.channels import CHANNELS, ChannelSpec
from contracts.deliveries import DeliveriesScheduled, DeliveryCommand, ReminderSent
from contracts.events import Event, parse_event
from contracts.feedback import Acknowledged
from programs import Program
from services.common.bus import Bus
from services.common.db import as_utc, insert_for
from services.tailor.channels import REMINDER_COMPOSERS, Composition
from services.tailor.directory import Recipient
from services.tailor.index import DirectoryIndex
from services.tailor.rendering import Renderer
from services.tailor.store import EventRecord, Stage, acknowledgements, events, reminders

log = logging.getLogger(__name__)

#: Namespace of reminder ids: (event, instant) → the same id every time.
REMINDER_NAMESPACE = UUID("3f0b7c52-8d1e-4a6b-9c2f-5e7a1d4b8c90")


def reminder_id(event_id: UUID, at: datetime) -> UUID:
    return uuid5(REMINDER_NAMESPACE, f"{event_id}:{at.astimezone(UTC).isoformat()}")


def reminder_times(acknowledge_by: datetime, hours_before: Iterable[int], now: datetime) -> list[datetime]:
    """The reminders still ahead when the news goes out at `now`, earliest first."""
    return sorted(t for h in hours_before if (t := acknowledge_by - timedelta(hours=h)) > now)


class ReminderStore:
    """The tailor's own record of reminders and acknowledgements (tables in `store.py`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record_acknowledgements(self, given: Iterable[Acknowledged]) -> int:
        rows = [{"event_id": str(a.event_id), "person_id": a.person_id, "at": a.acknowledged_at.astimezone(UTC)}
                for a in given if a.person_id is not None]
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(insert_for(conn)(acknowledgements).on_conflict_do_nothing(), rows)
        return len(rows)

    async def acknowledged(self, event_id: UUID) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(acknowledgements.c.person_id).where(
                acknowledgements.c.event_id == str(event_id)))).scalars())

    async def plan(self, event_id: UUID, times: Sequence[datetime]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(events).where(events.c.event_id == str(event_id)).values(
                reminders=json.dumps([t.astimezone(UTC).isoformat() for t in times]) if times else None))

    async def times(self, event_id: UUID) -> list[datetime]:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(events.c.reminders).where(events.c.event_id == str(event_id)))).scalar()
        return [datetime.fromisoformat(t) for t in json.loads(value)] if value else []

    async def sent(self, ids: Iterable[UUID]) -> set[str]:
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(reminders.c.reminder_id).where(
                reminders.c.reminder_id.in_([str(i) for i in ids])))).scalars())

    async def record(self, rid: UUID, event_id: UUID, at: datetime, targets: Mapping[str, Sequence[str]],
                     expected: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(reminders).values(
                reminder_id=str(rid), event_id=str(event_id), at=at.astimezone(UTC), targets=json.dumps(targets),
                status=Stage.PLANNED if expected else Stage.DELIVERED, expected=expected,
                updated_at=datetime.now(UTC)))

    async def unconfirmed(self) -> list[tuple[UUID, Event, datetime, dict[str, list[str]]]]:
        """Reminders sent whose deliveries the channels have not all confirmed, with their event as it reads."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(reminders.c.reminder_id, reminders.c.at, reminders.c.targets,
                                              events.c.body).join(events, events.c.event_id == reminders.c.event_id)
                                       .where(reminders.c.status == Stage.PLANNED))).all()
        return [(UUID(r.reminder_id), parse_event(r.body), as_utc(r.at), json.loads(r.targets)) for r in rows]

    async def ahead(self) -> list[tuple[Event, list[datetime], list[str]]]:
        """Events that went out with reminders planned, the instants, and the groups reminded (for a scheduler
        that may not have heard of them)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(events.c.body, events.c.reminders, events.c.targets).where(
                events.c.reminders.is_not(None), events.c.targets.is_not(None),
                events.c.status.in_((Stage.PLANNED, Stage.DELIVERED))))).all()
        return [(parse_event(r.body), [datetime.fromisoformat(t) for t in json.loads(r.reminders)],
                 reminded_groups(json.loads(r.targets))) for r in rows]


def reminded_groups(targets: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The target groups an event reached on a channel that carries reminders."""
    return sorted({g for name, by_target in targets.items() if name in REMINDER_COMPOSERS for g in by_target})


class Reminders:
    """The use case: schedule the reminders of news that went out, and send each when its time has come."""

    def __init__(self, store: ReminderStore, index: Callable[[], Awaitable[DirectoryIndex]], renderer: Renderer,
                 bus: Bus, clock: Callable[[], datetime],
                 addressed: Callable[[DeliveryCommand], Awaitable[DeliveryCommand | None]],
                 channels: Mapping[str, ChannelSpec] = CHANNELS,
                 undeliverable: Callable[[], Awaitable[Mapping[str, str]]] | None = None) -> None:
        self.store = store
        self.index = index
        self.renderer = renderer
        self.bus = bus
        self.clock = clock
        self.addressed = addressed
        self.channels = channels
        self.undeliverable = undeliverable  # whose address bounced since: no reminder either

    async def schedule(self, event: Event, program: Program, targets: Mapping[str, Mapping[str, object]]) -> None:
        """Right after `event` went out: its reminders' instants, kept and told to the scheduler."""
        if event.acknowledge_by is None:
            return
        groups = reminded_groups(targets)
        if not groups:
            return
        times = reminder_times(event.acknowledge_by, program.acknowledgement.reminders_before_hours, self.clock())
        await self.store.plan(event.event_id, times)
        await self._tell(event, groups, times)

    async def _tell(self, event: Event, groups: Sequence[str], times: Iterable[datetime]) -> None:
        now = self.clock()
        for at in times:
            if at > now:
                scheduled = DeliveriesScheduled(event_id=event.event_id, program=event.program, at=at,
                                                audiences=tuple(groups), reason="reminder", scheduled_at=now)
                await self.bus.publish(topics.DELIVERIES_SCHEDULED, scheduled, scheduled.bus_key)

    async def send_due(self, record: EventRecord, program: Program) -> int:
        """Every reminder of the event whose time has come and that was not sent yet: to those the event reached
        on a reminding channel who have not acknowledged it. Returns how many reminders went."""
        now = self.clock()
        if record.event.acknowledge_by is None or record.targets is None or not record.stage.went_out:
            return 0
        due = [t for t in await self.store.times(record.event.event_id) if t <= now]
        already = await self.store.sent(reminder_id(record.event.event_id, t) for t in due)
        due = [t for t in due if str(reminder_id(record.event.event_id, t)) not in already]
        if not due:
            return 0
        done = await self.store.acknowledged(record.event.event_id)
        if self.undeliverable is not None:
            done |= set(await self.undeliverable())
        for at in due[-1:]:  # reminders missed while down: only the latest goes, never a burst of them
            targets = {group: [i for i in ids if i not in done]
                       for name, by_target in record.targets.items() if name in REMINDER_COMPOSERS
                       for group, ids in by_target.items()}
            await self._send(record.event, program, reminder_id(record.event.event_id, at), at, targets)
        for at in due[:-1]:  # recorded as sent with nobody to wait for, so that they are never sent late
            await self.store.record(reminder_id(record.event.event_id, at), record.event.event_id, at, {}, 0)
        return 1

    async def _send(self, event: Event, program: Program, rid: UUID, at: datetime,
                    targets: Mapping[str, Sequence[str]], first: bool = True) -> None:
        index = await self.index()
        found = index.positions_of(i for ids in targets.values() for i in ids)
        commands: list[DeliveryCommand] = []
        for group, ids in targets.items():
            audience = program.audience(group)
            if audience is None or not ids:
                continue
            people: Sequence[Recipient] = index.people(ids, found)
            for composer in REMINDER_COMPOSERS.values():
                composition = Composition(event, program, group, audience, people, (group,),
                                          event.published_at or self.clock())
                for composed in composer.remind(composition, rid, self.renderer):
                    if (command := await self.addressed(composed)) is not None:
                        commands.append(command)
        if first:
            await self.store.record(rid, event.event_id, at, targets,
                                    sum(c.deliveries for c in commands))
        for command in commands:
            await self.bus.publish(self.channels[command.channel].topic, command, command.bus_key)
        targeted: dict[str, dict[str, int]] = {}
        for c in commands:
            by_channel = targeted.setdefault(c.audience_id, {})
            by_channel[c.channel] = by_channel.get(c.channel, 0) + c.deliveries
        for group, by_channel in targeted.items():
            sent = ReminderSent(reminder_id=rid, event_id=event.event_id, program=event.program, audience_id=group,
                                sent_at=self.clock(), targeted=by_channel)
            await self.bus.publish(topics.REMINDER_SENT, sent, sent.bus_key)
        log.info("reminder sent", extra={"event_id": str(event.event_id), "reminder_id": str(rid),
                                         "people": sum(len(ids) for ids in targets.values())})

    async def recover(self, programs: Mapping[str, Program]) -> None:
        """After a start: every reminder the channels have not confirmed, again to exactly whom it reminded (the
        ledgers make repeats no-ops); every reminder still ahead, told to the scheduler again."""
        for rid, event, at, targets in await self.store.unconfirmed():
            if (program := programs.get(event.program)) is not None:
                await self._send(event, program, rid, at, targets, first=False)
        for event, times, groups in await self.store.ahead():
            if groups:
                await self._tell(event, groups, times)
