"""Reminders of must-know news that asks to be acknowledged (`acknowledge_by`): at set times before the
deadline (the programme's `acknowledgement.reminders_before_hours`), a reminder by email to exactly those the
news reached by email who have not acknowledged it by then.

Time is the scheduler's: the tailor tells it each reminder's instant (`plans.deliveries_scheduled`, reason
"reminder") and, when the scheduler says the instant has come, sends what is due by its own clock and record.
A reminder's id derives from (event, instant): the channels' ledgers send each person each reminder once, and
it follows the event (a channel sends it only to whom the event went). Each reminder is kept until the
channels confirm it, and sent again after a start with exactly whom it reminded.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from contracts import topics
from contracts.channels import CHANNELS, ChannelSpec
from contracts.deliveries import DeliveriesScheduled, DeliveryCommand, DeliveryPlan, FollowUpSent
from contracts.events import Event
from programs import Program
from services.common.bus import Bus
from services.tailor import policy
from services.tailor.channels import REMINDER_COMPOSERS, Composition
from services.tailor.directory import Recipient, ids_of, select_members
from services.tailor.escalation import STEP_WORDS, Step, escalation_steps, manager_notices
from services.tailor.index import DirectoryIndex
from services.tailor.reminder_store import ReminderStore
from services.tailor.rendering import Renderer
from services.tailor.store import EventRecord

log = logging.getLogger(__name__)

#: The fewest people of a group whose share acknowledged is told (as for answers in follow-up).
MIN_SHOWN = 5
#: Namespace of follow-up ids: (event, instant) → the same id every time.
REMINDER_NAMESPACE = UUID("3f0b7c52-8d1e-4a6b-9c2f-5e7a1d4b8c90")


def reminder_id(event_id: UUID, at: datetime) -> UUID:
    return uuid5(REMINDER_NAMESPACE, f"{event_id}:{at.astimezone(UTC).isoformat()}")


def reminder_times(acknowledge_by: datetime, hours_before: Iterable[int], now: datetime) -> list[datetime]:
    """The reminders still ahead when the news goes out at `now`, earliest first."""
    return sorted(t for h in hours_before if (t := acknowledge_by - timedelta(hours=h)) > now)


def reminded_groups(targets: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The target groups an event reached on a channel that carries reminders."""
    return sorted({g for name, by_target in targets.items() if name in REMINDER_COMPOSERS for g in by_target})


class Reminders:
    """The use case: plan the reminders and escalation steps of news that went out, and send each when its time
    has come."""

    def __init__(self, store: ReminderStore, index: Callable[[], Awaitable[DirectoryIndex]], renderer: Renderer,
                 bus: Bus, clock: Callable[[], datetime],
                 addressed: Callable[[DeliveryCommand], Awaitable[DeliveryCommand | None]],
                 channels: Mapping[str, ChannelSpec] = CHANNELS,
                 undeliverable: Callable[[], Awaitable[Mapping[str, str]]] | None = None,
                 contacts: Callable[[Iterable[str]], Awaitable[dict[str, tuple[str, str]]]] | None = None) -> None:
        self.store = store
        self.index = index
        self.renderer = renderer
        self.bus = bus
        self.clock = clock
        self.addressed = addressed
        self.channels = channels
        self.undeliverable = undeliverable  # whose address bounced since: no reminder either
        self.contacts = contacts  # id → (name, address): the managers' addresses and their staff's names

    async def schedule(self, event: Event, program: Program, targets: Mapping[str, Mapping[str, object]]) -> None:
        """Right after `event` went out: its reminders' and escalation steps' instants, kept and told to the
        scheduler."""
        if event.acknowledge_by is None:
            return
        groups = reminded_groups(targets)
        now = self.clock()
        times = (reminder_times(event.acknowledge_by, program.acknowledgement.reminders_before_hours, now)
                 if groups else [])
        steps = escalation_steps(targets, self.channels, program.acknowledgement.escalate_after_hours, now)
        await self.store.plan(event.event_id, times, steps)
        await self._tell(event, groups, times, steps)

    async def _tell(self, event: Event, groups: Sequence[str], times: Iterable[datetime],
                    steps: Iterable[Step] = ()) -> None:
        now = self.clock()
        said = [(at, tuple(groups), "reminder") for at in times] + [(s.at, s.groups, "escalation") for s in steps]
        for at, audiences, reason in said:
            if at > now and audiences:
                scheduled = DeliveriesScheduled(event_id=event.event_id, program=event.program, at=at,
                                                audiences=audiences, reason=reason, scheduled_at=now)
                await self.bus.publish(topics.DELIVERIES_SCHEDULED, scheduled, scheduled.bus_key)

    async def send_due(self, record: EventRecord, program: Program) -> DeliveryPlan | None:
        """Every reminder and escalation step of the event whose time has come and that was not sent yet.
        Returns the plan as it now reads (each group's share acknowledged so far, and each step taken) when
        anything went, else None."""
        now = self.clock()
        if record.event.acknowledge_by is None or record.targets is None or not record.stage.went_out:
            return None
        event_id = record.event.event_id
        times, steps = await self.store.planned(event_id)
        by_time = {reminder_id(event_id, t): t for t in times if t <= now}
        by_step = {step_id(event_id, s): s for s in steps if s.at <= now}
        already = await self.store.sent([*by_time, *by_step])
        due_times = [t for i, t in by_time.items() if str(i) not in already]
        due_steps = [s for i, s in by_step.items() if str(i) not in already]
        if not due_times and not due_steps:
            return None
        done = await self._done(event_id)
        for at in sorted(due_times)[-1:]:  # reminders missed while down: only the latest goes, never a burst
            targets = {group: [i for i in people if i not in done]
                       for name, by_target in record.targets.items() if name in REMINDER_COMPOSERS
                       for group, people in by_target.items()}
            await self._send(record.event, program, reminder_id(event_id, at), at, targets)
        for at in sorted(due_times)[:-1]:  # recorded as sent with nobody to wait for: never sent late
            await self.store.record(reminder_id(event_id, at), event_id, at, {}, 0)
        plan = _with_step(record.plan, await self._shares(record))
        for step in sorted(due_steps, key=lambda s: (s.at, s.kind)):
            plan = await self._escalate(record, program, step, done, plan)
        return plan

    async def _shares(self, record: EventRecord) -> dict[str, str]:
        """Per group reached by email, the share who acknowledged by now: the plan tells it at each reminder and
        step, so that the event's status shows it over time. Never for fewer than MIN_SHOWN people, where the
        share would tell who has not."""
        acknowledged = await self.store.acknowledged(record.event.event_id)
        said = self._stamp()
        shares = {}
        for group, people in (record.targets or {}).get("email", {}).items():
            if len(people) >= MIN_SHOWN:
                n = sum(1 for i in people if i in acknowledged)
                shares[group] = f"{said}: {n} of {len(people)} acknowledged ({100 * n / len(people):.0f} %)"
        return shares

    async def _done(self, event_id: UUID) -> set[str]:
        """Who needs no reminder: those who acknowledged, and those whose address bounced."""
        done = await self.store.acknowledged(event_id)
        if self.undeliverable is not None:
            done |= set(await self.undeliverable())
        return done

    async def _escalate(self, record: EventRecord, program: Program, step: Step, done: set[str],
                        plan: DeliveryPlan | None) -> DeliveryPlan | None:
        """One escalation step: the news by email to a Teams-only group's people, or the managers' notices."""
        event, sid = record.event, step_id(record.event.event_id, step)
        waiting: dict[str, list[str]] = {}
        for group in step.groups:
            if program.audience(group) is None:
                continue
            reached = (record.targets or {}).get("email", {}).get(group)
            if reached is None:  # reached by Teams alone: its people as the group selects them
                reached = await self._reached(event, program, group)
            waiting[group] = [i for i in reached if i not in done]
        notices: dict[str, int] = {}
        if step.kind == "email":
            await self._send(event, program, sid, step.at, waiting, kind="email")
        else:
            notices = await self._notify_managers(event, program, sid, step.at, waiting, await self.index())
        said = self._stamp()
        return _with_step(plan, {g: f"{said}: {len(ids)} had not acknowledged: {STEP_WORDS[step.kind]}"
                                 + (f" ({notices.get(g, 0)} notices)" if step.kind == "managers" else "")
                                 for g, ids in waiting.items()})

    def _stamp(self) -> str:
        """Now, as the plan says it: Swedish time to the minute."""
        return f"{self.clock().astimezone(policy.STOCKHOLM):%Y-%m-%d %H:%M}"

    async def _notify_managers(self, event: Event, program: Program, sid: UUID, at: datetime,
                               waiting: Mapping[str, Sequence[str]], index: DirectoryIndex,
                               first: bool = True, only: set[str] | None = None) -> dict[str, int]:
        """Each manager of those who have not acknowledged gets one notice per group, naming them."""
        people = index.recipients(i for ids in waiting.values() for i in ids)
        contacts = await self.contacts({*people, *(p.manager for p in people.values() if p.manager)}) \
            if self.contacts is not None else {}
        commands: list[DeliveryCommand] = []
        targets: dict[str, list[str]] = {}
        for group, ids in waiting.items():
            audience = program.audience(group)
            if audience is None:
                continue
            staff: dict[str, list[str]] = {}
            for i in ids:
                manager = people[i].manager if i in people else ""
                if manager and manager in contacts and (only is None or manager in only):
                    staff.setdefault(manager, []).append(contacts[i][0] if i in contacts else i)
            targets[group] = sorted(staff)
            commands += manager_notices(event, program, audience, sid, staff, contacts, self.renderer)
        if first:
            await self.store.record(sid, event.event_id, at, targets, len(commands), kind="managers")
        await self._publish(event, sid, commands, "managers")
        return {g: len(m) for g, m in targets.items()}

    async def _send(self, event: Event, program: Program, rid: UUID, at: datetime,
                    targets: Mapping[str, Sequence[str]], first: bool = True, kind: str = "reminder") -> None:
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
                for composed in composer.remind(composition, rid, self.renderer, follows=kind == "reminder"):
                    if (command := await self.addressed(composed)) is not None:
                        commands.append(command)
        if first:
            await self.store.record(rid, event.event_id, at, targets, sum(c.deliveries for c in commands), kind)
        await self._publish(event, rid, commands, kind)
        log.info("reminder sent", extra={"event_id": str(event.event_id), "reminder_id": str(rid), "kind": kind,
                                         "people": sum(len(ids) for ids in targets.values())})

    async def _publish(self, event: Event, rid: UUID, commands: Sequence[DeliveryCommand], kind: str) -> None:
        await publish_follow_up(self.bus, self.channels, event, rid, commands, self.clock(), kind)

    async def recover(self, programs: Mapping[str, Program]) -> None:
        """After a start: every reminder and step the channels have not confirmed, again to whom it went (the
        ledgers make repeats no-ops); every one still ahead, told to the scheduler again."""
        for sent in await self.store.unconfirmed():
            if (program := programs.get(sent.event.program)) is None or sent.kind == "briefing":
                continue
            if sent.kind == "managers":
                done = await self._done(sent.event.event_id)
                waiting = {g: [i for i in await self._reached(sent.event, program, g) if i not in done]
                           for g in sent.targets}
                await self._notify_managers(sent.event, program, sent.id, sent.at, waiting, await self.index(),
                                            first=False, only={m for ms in sent.targets.values() for m in ms})
            else:
                await self._send(sent.event, program, sent.id, sent.at, sent.targets, first=False, kind=sent.kind)
        for ahead in await self.store.ahead():
            await self._tell(ahead.event, reminded_groups(ahead.targets), ahead.reminders, ahead.steps)

    async def _reached(self, event: Event, program: Program, group: str) -> list[str]:
        """Whom the news reached in a group: its people as the group selects them now."""
        audience = program.audience(group)
        if audience is None:
            return []
        index = await self.index()
        return list(ids_of(policy.scope_members(select_members(index, audience.members), audience,
                                                policy.area_scope(event))))


async def publish_follow_up(bus: Bus, channels: Mapping[str, ChannelSpec], event: Event, rid: UUID,
                            commands: Sequence[DeliveryCommand], now: datetime, kind: str,
                            area: str | None = None) -> None:
    """A follow-up's commands, then what each group was sent (so that follow-up counts their deliveries)."""
    for command in commands:
        await bus.publish(channels[command.channel].topic, command, command.bus_key)
    targeted: dict[str, dict[str, int]] = {}
    for c in commands:
        by_channel = targeted.setdefault(c.audience_id, {})
        by_channel[c.channel] = by_channel.get(c.channel, 0) + c.deliveries
    for group, by_channel in targeted.items():
        sent = FollowUpSent(follow_up_id=rid, event_id=event.event_id, program=event.program, audience_id=group,
                            kind=kind, area=area, sent_at=now, targeted=by_channel)
        await bus.publish(topics.FOLLOW_UP_SENT, sent, sent.bus_key)


def step_id(event_id: UUID, step: Step) -> UUID:
    return uuid5(REMINDER_NAMESPACE, f"{event_id}:{step.kind}:{step.at.astimezone(UTC).isoformat()}")


def _with_step(plan: DeliveryPlan | None, said: Mapping[str, str]) -> DeliveryPlan | None:
    """The plan with an escalation step said in each group it concerned."""
    if plan is None:
        return None
    groups = tuple(g.model_copy(update={"reasons": (*g.reasons, said[g.audience_id])}) if g.audience_id in said
                   else g for g in plan.groups)
    return plan.model_copy(update={"groups": groups})
