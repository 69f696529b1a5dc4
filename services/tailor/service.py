"""The tailor's use case: hold what is embargoed, plan the rest, compose each channel's commands, emit them."""

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from uuid import UUID

from contracts import topics
from contracts.channels import CHANNELS, ChannelSpec, Reach
from contracts.deliveries import (
    DeliveryCommand,
    DeliveryPlan,
    EmailRecipient,
    EventPlanned,
    SendEmail,
)
from contracts.events import Correction, Event, apply_correction
from contracts.lifecycle import EventCancelled, PlanStatus
from contracts.schedule import DigestDue
from programs import Program
from services.common.bus import Bus, DependencyUnavailable
from services.common.subscriptions import Unprocessable
from services.tailor import policy, waits
from services.tailor.amendments import amendment_plan, is_amendment
from services.tailor.bounces import Bounces
from services.tailor.briefings import Briefings
from services.tailor.channels import (
    COMPOSERS,
    DIGEST_COMPOSERS,
    Composer,
    Composition,
    DigestComposer,
)
from services.tailor.channels import preview as compose_preview
from services.tailor.digest_runs import DigestRuns
from services.tailor.digests import Digest
from services.tailor.directory import ids_of, keep, member_filter, select_members
from services.tailor.imports import DirectoryImports
from services.tailor.planning import Plan, UnknownAudienceError, plan_deliveries
from services.tailor.reminder_store import ReminderStore
from services.tailor.reminders import Reminders
from services.tailor.rendering import Renderer
from services.tailor.store import EventRecord, Stage, TailorStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Tailor:
    def __init__(self, programs: Mapping[str, Program], renderer: Renderer, store: TailorStore, bus: Bus,
                 clock: Clock = lambda: datetime.now(UTC), composers: Mapping[str, Composer] = COMPOSERS,
                 channels: Mapping[str, ChannelSpec] = CHANNELS,
                 digest_composers: Mapping[str, DigestComposer] = DIGEST_COMPOSERS, soft_bounce_limit: int = 3) -> None:
        missing = sorted(set(channels) - set(composers))
        if missing:
            raise ValueError(f"channels {missing} have no composer in the tailor")
        self.programs = programs
        self.renderer = renderer
        self.preview_renderer = renderer.for_previews()
        self.store = store
        self.bus = bus
        self.clock = clock
        self.composers = composers
        self.channels = channels
        self.digest_composers = digest_composers
        self.imports = DirectoryImports(store, {a for p in programs.values() for a in p.areas}, clock)
        self.bounces = Bounces(store.engine, soft_bounce_limit)
        follow_ups = ReminderStore(store.engine)
        self.reminders = Reminders(follow_ups, store.load_index, renderer, bus, clock, self._addressed, channels,
                                   self.bounces.undeliverable, store.contacts)
        self.briefings = Briefings(follow_ups, store.load_index, renderer, bus, clock, store.contacts, channels)
        self.digests = DigestRuns(self._program, renderer, store, bus, clock, channels, digest_composers,
                                  self._addressed, self.bounces.undeliverable)

    def program_for(self, event: Event) -> Program:
        return self._program(event.program)

    def _program(self, code: str) -> Program:
        program = self.programs.get(code)
        if program is None:
            raise Unprocessable(f"programme {code!r} has no configuration")
        return program

    async def plan(self, event: Event) -> Plan:
        program = self.program_for(event)
        if is_amendment(event):
            return (await self._amendment(event))[1]
        directory = await self.store.load_index()
        return plan_deliveries(event, program, directory, self.channels, await self.store.choices(program.program),
                               now=self.clock(), undeliverable=await self.bounces.undeliverable())

    async def members(self, program_code: str) -> dict[str, int]:
        """Each target group of the programme with the number of people in the directory its selector matches."""
        program = self.programs[program_code]
        directory = await self.store.load_index()
        return {audience.id: len(select_members(directory, audience.members)) for audience in program.audiences}

    async def undeliverable(self, program_code: str) -> dict[str, int]:
        """Each target group of the programme with the number of its people whose address takes no mail."""
        program = self.programs[program_code]
        bounced = await self.bounces.undeliverable()
        if not bounced:
            return {}
        directory = await self.store.load_index()
        found = directory.people(bounced, directory.positions_of(bounced))
        counts = {a.id: len(keep(found, member_filter(a.members))) for a in program.audiences}
        return {aid: n for aid, n in counts.items() if n}

    def preview(self, event: Event, audience_id: str, channel: str) -> dict[str, str]:
        """What `channel` would carry of `event` for the group, for a sample member, nothing sent. ValueError
        (UnknownAudienceError) names what cannot be previewed."""
        program = self.program_for(event)
        audience = program.audience(audience_id)
        if audience is None:
            raise UnknownAudienceError(f"programme {program.program!r} has no target group {audience_id!r}")
        if channel not in self.channels or channel not in self.composers:
            raise ValueError(f"no channel {channel!r}")
        parts = compose_preview(event, program, audience, channel, self.preview_renderer, self.composers)
        return dict(parts)

    async def on_event(self, event: Event) -> None:
        stage = await self.store.status(event.event_id)
        if stage is Stage.CANCELLED:
            log.info("event cancelled while held; nothing sent", extra={"event_id": str(event.event_id)})
            return
        if stage is not None and stage.went_out:
            # A redelivered (or re-relayed) event: nothing is planned twice, but its plan is announced again,
            # for a gateway that may not have heard it.
            stored = await self.store.stored_plan(event.event_id)
            if stored is not None:
                await self._publish_plan(DeliveryPlan.model_validate_json(stored), PlanStatus.PLANNED)
            log.info("event already planned; nothing sent twice", extra={"event_id": str(event.event_id)})
            return
        if is_amendment(event):
            await self.amend(event)
            return
        plan = await self.plan(event)
        if policy.is_embargoed(event, self.clock()):
            await self.store.record(event, Stage.HELD)
            await self._publish_plan(plan.contract, PlanStatus.EMBARGOED)  # the scheduler releases it at its instant
            log.info("event held until embargo lifts", extra={"event_id": str(event.event_id)})
            return
        await self.deliver(event, plan)

    def compose(self, event: Event, plan: Plan, published_at: datetime,
                amends: Event | None = None) -> Iterator[tuple[str, DeliveryCommand]]:
        """Every command of the plan, with its topic: one loop over the plan's channels and targets. An
        amendment's commands follow its original (`amends`, as it now reads)."""
        program = self.program_for(event)
        planned = tuple(plan.audiences)
        for name, by_target in plan.targets.items():
            composer = self.composers[name]
            programme_wide = self.channels[name].reach is Reach.PROGRAMME
            for target, people in by_target.items():
                audience = None if programme_wide else plan.audiences[target]
                composition = Composition(event, program, target, audience, people, planned, published_at, amends)
                for command in composer.compose(composition, self.renderer):
                    yield self.channels[name].topic, command

    async def deliver(self, event: Event, plan: Plan, amends: Event | None = None) -> None:
        """Record what is planned (whom, on which channel), then emit every command and the plan. A crash
        midway is made whole by `recover`, from the record; the channels' ledgers make sure no one gets
        anything twice."""
        targets = {name: {target: ids_of(people) for target, people in by_target.items()}
                   for name, by_target in plan.targets.items()}
        status = Stage.PLANNED if plan.targets else Stage.DELIVERED  # nothing to wait for when nothing is targeted
        await self.store.record(event, status, plan.contract, targets, plan.waiting)
        log.info("event planned", extra={"event_id": str(event.event_id), "groups": len(plan.contract.groups),
                                         "refused": len(plan.contract.refused)})
        if plan.briefed:  # managers first: before anything reaches their staff
            await self.briefings.send(event, self.program_for(event), plan.briefed)
        await self._emit(event, plan, amends)
        await waits.announce(self.bus, event, plan.waiting, self.clock())
        if not is_amendment(event):
            await self.reminders.schedule(event, self.program_for(event), targets)

    async def recover(self) -> int:
        """After a start: emit again every planned event the channels have not all confirmed, and announce
        every held one again (for a scheduler that may not have heard of it). With an in-memory broker a
        crash loses what was on the bus; the ledgers make the repeats no-ops."""
        for held in await self.store.held_events():
            await self._publish_plan((await self.plan(held)).contract, PlanStatus.EMBARGOED)
        for due in await self.store.unconfirmed_digests():
            await self.send_digest(due)
        await self.reminders.recover(self.programs)
        await self.briefings.recover(self.programs)
        pending = await self.store.unconfirmed()
        if not pending:
            return 0
        directory = await self.store.load_index()
        for stored in pending:
            program = self.program_for(stored.event)
            contract = DeliveryPlan.model_validate_json(stored.plan)
            audiences = {g.audience_id: a for g in contract.groups if (a := program.audience(g.audience_id))}
            found = directory.positions_of(i for by_target in stored.targets.values() for ids in by_target.values()
                                           for i in ids)
            for name, by_target in stored.targets.items():
                if name in CHANNELS and CHANNELS[name].reach is Reach.PERSON:
                    for target, ids in by_target.items():
                        if gone := [i for i in ids if i not in found]:  # left the directory: no longer waited for
                            await self.store.leave_out(stored.event.event_id, name, target, gone)
            targets = {name: {target: directory.people(ids, found) for target, ids in by_target.items()}
                       for name, by_target in stored.targets.items()}
            await self._emit(stored.event, Plan(contract=contract, targets=targets, audiences=audiences,
                                                waiting=stored.waiting))
            await waits.announce(self.bus, stored.event, stored.waiting, self.clock())  # for a scheduler that may not have heard
        log.info("planned events emitted again after a start", extra={"events": len(pending)})
        return len(pending)

    async def _emit(self, event: Event, plan: Plan, amends: Event | None = None, announce: bool = True) -> None:
        """`amends`: an amendment's original as it now reads (looked up when not given: after a restart).
        `announce`: say the plan after the commands (a release says it once itself, as the plan now reads)."""
        sends: list[asyncio.Task[None]] = []
        counts: dict[str, int] = {}
        if amends is None and is_amendment(event):
            amends = (await self._original(event))[1].event
        plan = waits.due_now(plan, self.clock())
        for topic, composed in self.compose(event, plan, event.published_at or self.clock(), amends):
            command = await self._addressed(composed)
            if command is None:
                continue
            counts[command.channel] = counts.get(command.channel, 0) + 1
            sends.append(asyncio.create_task(self.bus.publish(topic, command, command.bus_key)))
            if len(sends) >= 100:
                await asyncio.gather(*sends)
                sends.clear()
        await asyncio.gather(*sends)
        if announce:
            await self._publish_plan(plan.contract, PlanStatus.PLANNED)
        log.info("commands emitted", extra={"event_id": str(event.event_id), "commands": counts})

    async def _release_due(self, event_id: UUID) -> str:
        """The scheduler says an instant of an event that went out has come: send what is due by then (what
        waited for quiet hours to end, a reminder), then announce the plan again, which the scheduler takes as
        the instant confirmed. The ledgers make a repeat a no-op."""
        record = await self.store.record_of(event_id)
        if record is None or record.plan is None:
            return "already out"
        program = self.program_for(record.event)
        done = "quiet hours ended" if await self._release_waits(record, program) else "already out"
        plan = record.plan
        if (followed := await self.reminders.send_due(record, program)) is not None:
            await self.reminders.store.update_plan(event_id, followed)  # every step is in the plan and its status
            plan, done = followed, "followed up"
        await self._publish_plan(plan, PlanStatus.PLANNED)
        return done

    async def _release_waits(self, record: EventRecord, program: Program) -> bool:
        """Emit the deliveries that waited for a group's quiet hours to end and whose instant has passed."""
        due = waits.due_by(record.waiting, self.clock())
        if not any(due.values()) or record.targets is None or record.stage is not Stage.PLANNED or record.plan is None:
            return False
        directory = await self.store.load_index()
        ids = {name: {t: record.targets.get(name, {}).get(t, []) for t in targets} for name, targets in due.items()}
        found = directory.positions_of(i for by_target in ids.values() for group in by_target.values() for i in group)
        targets = {name: {t: directory.people(group, found) for t, group in by_target.items()}
                   for name, by_target in ids.items() if by_target}
        audiences = {g.audience_id: a for g in record.plan.groups if (a := program.audience(g.audience_id))}
        await self._emit(record.event, Plan(contract=record.plan, targets=targets, audiences=audiences),
                         announce=False)
        log.info("deliveries sent after quiet hours", extra={"event_id": str(record.event.event_id)})
        return True

    async def _addressed(self, command: DeliveryCommand) -> DeliveryCommand | None:
        """An email command with its recipients' names and addresses, read for its chunk alone (the directory in
        memory holds neither); people no longer in the directory are left out (and no longer waited for), and
        a chunk left empty is not sent (None). Other commands as they are."""
        if not isinstance(command, SendEmail):
            return command
        contacts = await self.store.contacts(r.id for r in command.recipients)
        addressed = tuple(EmailRecipient.model_construct(id=r.id, address=contacts[r.id][1], name=contacts[r.id][0])
                          for r in command.recipients if r.id in contacts)
        if len(addressed) < len(command.recipients):
            gone = [r.id for r in command.recipients if r.id not in contacts]
            await self.store.leave_out(command.event_id, command.channel, command.audience_id, gone)
            log.warning("people left the directory before their mail was composed; left out", extra={
                "event_id": str(command.event_id), "audience_id": command.audience_id, "count": len(gone)})
        return command.model_copy(update={"recipients": addressed}) if addressed else None

    async def _publish_plan(self, plan: DeliveryPlan, status: PlanStatus) -> None:
        message = EventPlanned(plan=plan, status=status, planned_at=self.clock())
        await self.bus.publish(topics.EVENT_PLANNED, message, str(plan.event_id))

    async def send_digest(self, due: DigestDue) -> Digest:
        """A target group's digest for the period the scheduler names (`digest_runs.DigestRuns`)."""
        return await self.digests.send(due)

    # Corrections and retractions ------------------------------------------------------------------------------

    async def _original(self, amendment: Event) -> tuple[UUID, EventRecord]:
        """The event an amendment amends, at the start of its chain (a correction of a correction amends the
        same original). One not planned here yet (the bus brings it later) is waited for: DependencyUnavailable."""
        seen: set[UUID] = set()
        target = amendment.payload.corrects  # type: ignore[union-attr]
        while target not in seen:
            seen.add(target)
            record = await self.store.record_of(target)
            if record is None:
                raise DependencyUnavailable(f"the event {target} that {amendment.event_id} amends is not here yet")
            if not is_amendment(record.event):
                return target, record
            target = record.event.payload.corrects  # type: ignore[union-attr]
        raise Unprocessable(f"amendment {amendment.event_id} amends itself in a loop")

    async def _amendment(self, event: Event) -> tuple[UUID, Plan, EventRecord]:
        """The original's id, the amendment's plan (whom the original reached, by the channels it reached
        them by), and the original's record."""
        original_id, record = await self._original(event)
        program = self.program_for(event)
        if record.stage.went_out and record.plan is not None:
            targets = record.targets
            if targets is None:  # the retention forgot whom it reached: its groups' channels and the intranet
                targets = {}
                for target, by_channel in record.plan.targeted.items():
                    for channel in by_channel:
                        if channel in self.channels and self.channels[channel].reach is not Reach.PERSON:
                            targets.setdefault(channel, {})[target] = []
            people = (await self.store.load_index()).recipients(
                i for by_target in targets.values() for ids in by_target.values() for i in ids)
            return original_id, amendment_plan(event, record.plan, targets, people, program), record
        # Held: not out yet, so nobody is told; it goes out as it now reads.
        nothing = DeliveryPlan(event_id=event.event_id, program=event.program, groups=(), refused=())
        return original_id, Plan(contract=nothing, targets={}, audiences={}), record

    async def amend(self, event: Event) -> None:
        """A correction or retraction: the original reads as corrected from now on (later digests, a release
        still to come) or is withdrawn; those it reached are told, on the channels it reached them by."""
        original_id, plan, record = await self._amendment(event)
        if isinstance(event.payload, Correction):
            try:
                now_reads = apply_correction(record.event, event.payload)
            except ValueError as exc:
                raise Unprocessable(f"correction {event.event_id} does not fit {original_id}: {exc}") from exc
            await self.store.amend(original_id, body=now_reads)
        else:
            now_reads = record.event
            await self.store.amend(original_id, retract=True)
        log.info("event amended", extra={"event_id": str(event.event_id), "amends": str(original_id),
                                         "type": event.type, "went_out": record.stage.went_out})
        await self.deliver(event, plan, now_reads)

    async def cancel(self, cancelled: EventCancelled) -> None:
        """A held event withdrawn: it is never released. One that went out already is past cancelling (the
        gateway refuses that; this is the rare race where the release came first, and it is said loudly)."""
        stage = await self.store.cancel(cancelled.event_id)
        if stage is None:
            log.warning("cancel of an event the tailor has not seen; the scheduler will not release it",
                        extra={"event_id": str(cancelled.event_id)})
        elif stage.went_out:
            log.error("cancel came after the event went out", extra={"event_id": str(cancelled.event_id)})
        else:
            log.info("held event cancelled", extra={"event_id": str(cancelled.event_id)})

    async def release(self, event_id: UUID) -> str:
        """The scheduler says a held event's instant has come: it goes out if it is held and the instant has
        passed. For an event that went out already, it is the end of a group's quiet hours: what waited for it
        goes, and the plan is announced again (the scheduler takes that as the release confirmed); one still
        embargoed by this clock is announced as held (the scheduler waits again). Returns what was done."""
        found = await self.store.held(event_id)
        if found is None:
            log.warning("release of an event the tailor has not seen", extra={"event_id": str(event_id)})
            return "unknown"
        status, event = found
        if status is Stage.CANCELLED:
            log.info("release of a cancelled event: nothing sent", extra={"event_id": str(event_id)})
            return "cancelled"
        if status is not Stage.HELD:
            return await self._release_due(event_id)
        plan = await self.plan(event)
        if policy.is_embargoed(event, self.clock()):
            await self._publish_plan(plan.contract, PlanStatus.EMBARGOED)
            return "still held"
        await self.deliver(event, plan)
        return "released"
