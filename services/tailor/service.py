"""The tailor's use case: hold what is embargoed, plan the rest, render, and emit the delivery commands."""

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from contracts import topics
from contracts.deliveries import EventPlanned, PublishIntranetItem, SendEmail, SendTeamsCard
from contracts.events import Event, GoLiveMilestoneReached, Sensitivity
from services.common.bus import Bus
from services.tailor import policy
from services.tailor.planning import Plan, plan_deliveries
from services.tailor.programs import Program
from services.tailor.rendering import Renderer
from services.tailor.store import TailorStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class UnprocessableEvent(Exception):
    """A valid event the tailor cannot act on (e.g. a programme without configuration)."""


def resolve_webhooks(program: Program, environ: Mapping[str, str], sink_url: str | None) -> dict[str, str]:
    """Each group's Teams webhook: its secret from the environment, or the local sink in embedded mode."""
    hooks = {}
    for audience in program.audiences:
        if "teams" not in audience.channels:
            continue
        url = environ.get(audience.teams_webhook_env or "", "")
        if not url and sink_url:
            url = f"{sink_url.rstrip('/')}/{audience.id}"
        if url:
            hooks[audience.id] = url
    return hooks


class Tailor:
    def __init__(self, programs: Mapping[str, Program], renderer: Renderer, store: TailorStore, bus: Bus,
                 webhooks: Mapping[str, Mapping[str, str]], clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.programs = programs
        self.renderer = renderer
        self.store = store
        self.bus = bus
        self.webhooks = webhooks
        self.clock = clock
        self.wake = asyncio.Event()

    def program_for(self, event: Event) -> Program:
        program = self.programs.get(event.program)
        if program is None:
            raise UnprocessableEvent(f"programme {event.program!r} has no configuration")
        return program

    async def plan(self, event: Event) -> Plan:
        program = self.program_for(event)
        directory = await self.store.load_directory()
        return plan_deliveries(event, program, directory, self.webhooks.get(program.program, {}))

    async def on_event(self, event: Event) -> None:
        if await self.store.status(event.event_id) == "planned":
            log.info("event already planned; nothing sent twice", extra={"event_id": str(event.event_id)})
            return
        plan = await self.plan(event)
        if policy.is_embargoed(event, self.clock()):
            await self.store.record(event, "held")
            await self._publish_plan(plan, "embargoed")
            self.wake.set()
            log.info("event held until embargo lifts", extra={"event_id": str(event.event_id)})
            return
        await self.deliver(event, plan)

    async def deliver(self, event: Event, plan: Plan) -> None:
        """Emit every command, then the plan, then record: a crash midway re-emits, and the channels'
        ledgers make sure no one gets anything twice."""
        program = self.program_for(event)
        published_at = event.published_at or self.clock()
        sends: list[asyncio.Future[None] | asyncio.Task[None]] = []
        for aid, people in plan.emails.items():
            audience = plan.audiences[aid]
            rendered = self.renderer.email(event, program, audience)
            sender = policy.sender_for(program)
            for person in people:
                cmd = SendEmail(event_id=event.event_id, program=program.program, audience_id=aid,
                                recipient_id=person.id, to_address=person.email, to_name=person.name,
                                sender_name=sender.name, sender_address=sender.address,
                                subject=rendered.subject, text_body=rendered.text, html_body=rendered.html,
                                correlation_id=event.correlation_id)
                sends.append(asyncio.ensure_future(self.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, person.id)))
                if len(sends) >= 500:
                    await asyncio.gather(*sends)
                    sends.clear()
        for aid, url in plan.teams.items():
            card = self.renderer.teams_card(event, program, plan.audiences[aid])
            cmd_t = SendTeamsCard(event_id=event.event_id, program=program.program, audience_id=aid,
                                  webhook_url=url, card=card, correlation_id=event.correlation_id)
            sends.append(asyncio.ensure_future(self.bus.publish(topics.TEAMS_DELIVERY_REQUESTED, cmd_t, aid)))
        if plan.intranet:
            item = self.renderer.intranet_item(event, program)
            cmd_i = PublishIntranetItem(
                event_id=event.event_id, program=program.program, event_type=event.type, title=item.title,
                summary=item.summary, html_body=item.html, importance=event.importance.value,
                sensitivity="public" if event.sensitivity is Sensitivity.PUBLIC else "internal",
                occurred_at=event.occurred_at, published_at=published_at,
                audiences=tuple(plan.audiences), facts=item.facts, correlation_id=event.correlation_id,
                timeline_date=event.payload.planned_date if isinstance(event, GoLiveMilestoneReached) else None)
            sends.append(asyncio.ensure_future(
                self.bus.publish(topics.INTRANET_DELIVERY_REQUESTED, cmd_i, str(event.event_id))))
        await asyncio.gather(*sends)
        await self._publish_plan(plan, "planned")
        await self.store.record(event, "planned")
        log.info("event planned", extra={"event_id": str(event.event_id), "groups": len(plan.contract.groups),
                                         "refused": len(plan.contract.refused),
                                         "emails": sum(len(v) for v in plan.emails.values()),
                                         "teams": len(plan.teams), "intranet": plan.intranet})

    async def _publish_plan(self, plan: Plan, status: str) -> None:
        message = EventPlanned(plan=plan.contract, status=status, planned_at=self.clock())
        await self.bus.publish(topics.EVENT_PLANNED, message, str(plan.contract.event_id))

    async def release_due(self) -> int:
        released = 0
        for event in await self.store.due(self.clock()):
            await self.deliver(event, await self.plan(event))
            released += 1
        return released

    async def run_embargo_releases(self) -> None:
        """Sleep until the next embargo lifts (or a new one arrives), then release what is due."""
        while True:
            await self.release_due()
            next_at = await self.store.next_release()
            timeout = 30.0 if next_at is None else max(0.05, (next_at - self.clock()).total_seconds())
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=min(timeout, 30.0))
            except TimeoutError:
                pass
