"""The tailor's use case: hold what is embargoed, plan the rest, compose each channel's commands, emit them."""

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

from contracts import topics
from contracts.channels import CHANNELS, ChannelSpec, Reach
from contracts.deliveries import DeliveryCommand, DeliveryPlan, EventPlanned
from contracts.events import Event
from programs import Program
from services.common.bus import Bus
from services.tailor import policy
from services.tailor.channels import COMPOSERS, Composer, Composition
from services.tailor.planning import Plan, plan_deliveries
from services.tailor.rendering import Renderer
from services.tailor.store import TailorStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class UnprocessableEvent(Exception):
    """A valid event the tailor cannot act on (e.g. a programme without configuration)."""


class Tailor:
    def __init__(self, programs: Mapping[str, Program], renderer: Renderer, store: TailorStore, bus: Bus,
                 clock: Clock = lambda: datetime.now(UTC), composers: Mapping[str, Composer] = COMPOSERS,
                 channels: Mapping[str, ChannelSpec] = CHANNELS) -> None:
        missing = sorted(set(channels) - set(composers))
        if missing:
            raise ValueError(f"channels {missing} have no composer in the tailor")
        self.programs = programs
        self.renderer = renderer
        self.store = store
        self.bus = bus
        self.clock = clock
        self.composers = composers
        self.channels = channels
        self.wake = asyncio.Event()

    def program_for(self, event: Event) -> Program:
        program = self.programs.get(event.program)
        if program is None:
            raise UnprocessableEvent(f"programme {event.program!r} has no configuration")
        return program

    async def plan(self, event: Event) -> Plan:
        program = self.program_for(event)
        directory = await self.store.load_index()
        return plan_deliveries(event, program, directory, self.channels)

    async def on_event(self, event: Event) -> None:
        if await self.store.status(event.event_id) in ("planned", "delivered"):
            # A redelivered (or re-relayed) event: nothing is planned twice, but its plan is announced again,
            # for a gateway that may not have heard it.
            stored = await self.store.stored_plan(event.event_id)
            if stored is not None:
                await self._publish_plan(DeliveryPlan.model_validate_json(stored), "planned")
            log.info("event already planned; nothing sent twice", extra={"event_id": str(event.event_id)})
            return
        plan = await self.plan(event)
        if policy.is_embargoed(event, self.clock()):
            await self.store.record(event, "held")
            await self._publish_plan(plan.contract, "embargoed")
            self.wake.set()
            log.info("event held until embargo lifts", extra={"event_id": str(event.event_id)})
            return
        await self.deliver(event, plan)

    def compose(self, event: Event, plan: Plan, published_at: datetime) -> Iterator[tuple[str, DeliveryCommand]]:
        """Every command of the plan, with its topic: one loop over the plan's channels and targets."""
        program = self.program_for(event)
        planned = tuple(plan.audiences)
        for name, by_target in plan.targets.items():
            composer = self.composers[name]
            programme_wide = self.channels[name].reach is Reach.PROGRAMME
            for target, people in by_target.items():
                audience = None if programme_wide else plan.audiences[target]
                composition = Composition(event, program, target, audience, people, planned, published_at)
                for command in composer.compose(composition, self.renderer):
                    yield self.channels[name].topic, command

    async def deliver(self, event: Event, plan: Plan) -> None:
        """Record what is planned (whom, on which channel), then emit every command and the plan. A crash
        midway is made whole by `recover`, from the record; the channels' ledgers make sure no one gets
        anything twice."""
        targets = {name: {target: [p.id for p in people] for target, people in by_target.items()}
                   for name, by_target in plan.targets.items()}
        status = "planned" if plan.targets else "delivered"  # nothing to wait for when nothing is targeted
        await self.store.record(event, status, plan.contract, targets)
        log.info("event planned", extra={"event_id": str(event.event_id), "groups": len(plan.contract.groups),
                                         "refused": len(plan.contract.refused)})
        await self._emit(event, plan)

    async def recover(self) -> int:
        """After a start: emit again every planned event the channels have not all confirmed. With an
        in-memory broker a crash loses what was on the bus; the ledgers make the repeats no-ops."""
        pending = await self.store.unconfirmed()
        if not pending:
            return 0
        people = {r.id: r for r in await self.store.load_directory()}
        for stored in pending:
            program = self.program_for(stored.event)
            contract = DeliveryPlan.model_validate_json(stored.plan)
            audiences = {g.audience_id: a for g in contract.groups if (a := program.audience(g.audience_id))}
            targets = {name: {target: [people[i] for i in ids if i in people] for target, ids in by_target.items()}
                       for name, by_target in stored.targets.items()}
            await self._emit(stored.event, Plan(contract=contract, targets=targets, audiences=audiences))
        log.info("planned events emitted again after a start", extra={"events": len(pending)})
        return len(pending)

    async def _emit(self, event: Event, plan: Plan) -> None:
        sends: list[asyncio.Task[None]] = []
        counts: dict[str, int] = {}
        for topic, command in self.compose(event, plan, event.published_at or self.clock()):
            counts[command.channel] = counts.get(command.channel, 0) + 1
            sends.append(asyncio.create_task(self.bus.publish(topic, command, command.bus_key)))
            if len(sends) >= 100:
                await asyncio.gather(*sends)
                sends.clear()
        await asyncio.gather(*sends)
        await self._publish_plan(plan.contract, "planned")
        log.info("commands emitted", extra={"event_id": str(event.event_id), "commands": counts})

    async def _publish_plan(self, plan: DeliveryPlan, status: str) -> None:
        message = EventPlanned(plan=plan, status=status, planned_at=self.clock())
        await self.bus.publish(topics.EVENT_PLANNED, message, str(plan.event_id))

    async def release_due(self) -> int:
        released = 0
        for event in await self.store.due(self.clock()):
            await self.deliver(event, await self.plan(event))
            released += 1
        return released

    async def run_embargo_releases(self) -> None:
        """Sleep until the next embargo lifts (or a new one arrives), then release what is due."""
        while True:
            self.wake.clear()  # before looking: a wake-up that arrives while we look is not lost
            await self.release_due()
            next_at = await self.store.next_release()
            timeout = 30.0 if next_at is None else max(0.05, (next_at - self.clock()).total_seconds())
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=min(timeout, 30.0))
            except TimeoutError:
                pass
