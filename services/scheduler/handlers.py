"""The scheduler's subscriber: the tailor's plans say which events are held until when, and when a held
event went out."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import EventPlanned
from services.common.bus import Bus, bounded_failures, decode_or_dead_letter, raw_body
from services.scheduler.service import Scheduler

CONSUMER = "scheduler"


def build_router(scheduler: Scheduler, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EVENT_PLANNED, group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="scheduler:plans")
    async def on_event_planned(msg: KafkaMessage) -> None:
        planned = await decode_or_dead_letter(msg, EventPlanned.model_validate_json, bus, CONSUMER)
        if planned is None:
            return
        plan = planned.plan
        async with bounded_failures(msg, bus, CONSUMER):
            if planned.status == "embargoed" and plan.embargoed_until is not None:
                await scheduler.on_held(plan.event_id, plan.program, plan.embargoed_until)
            elif planned.status == "planned":
                await scheduler.on_released(plan.event_id)

    return router
