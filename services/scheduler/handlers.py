"""The scheduler's subscriptions: the tailor's plans say which events are held until when, and when a held
event went out; which deliveries are due later (quiet hours, reminders); the gateway's cancellations."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import EventPlanned
from services.common.bus import Bus
from services.common.subscriptions import subscribe
from services.scheduler.service import Scheduler


def build_router(scheduler: Scheduler, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    async def on_event_planned(planned: EventPlanned) -> None:
        plan = planned.plan
        if planned.held_until is not None:
            await scheduler.on_held(plan.event_id, plan.program, planned.held_until)
        elif planned.released:
            await scheduler.on_released(plan.event_id, planned.planned_at)

    subscribe(router, subscriptions.SCHEDULER_PLANS, bus, on_event_planned)
    subscribe(router, subscriptions.SCHEDULER_SCHEDULED, bus, scheduler.on_scheduled)
    subscribe(router, subscriptions.SCHEDULER_CANCELLED, bus, scheduler.on_cancelled)
    return router
