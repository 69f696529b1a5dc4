"""The gateway listens to plans and outcomes so that GET /v1/events/{id} can report without reading
other services' tables."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import DeliveryOutcome, EventPlanned
from services.common.bus import Bus, bounded_failures, decode_batch, decode_or_dead_letter, raw_body
from services.gateway.store import GatewayStore

CONSUMER = "gateway"


def build_router(store: GatewayStore, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EVENT_PLANNED, group_id=f"{CONSUMER}-plans", auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="gateway:plans")
    async def on_event_planned(msg: KafkaMessage) -> None:
        planned = await decode_or_dead_letter(msg, EventPlanned.model_validate_json, bus, CONSUMER)
        if planned is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_plan(planned)

    @router.subscriber(topics.DELIVERY_OUTCOMES, group_id=f"{CONSUMER}-outcomes", auto_offset_reset="earliest",
                       batch=True, max_records=500, ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="gateway:outcomes")
    async def on_delivery_outcomes(msg: KafkaMessage) -> None:
        batch = await decode_batch(msg, DeliveryOutcome.model_validate_json, bus, CONSUMER)
        if batch:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_outcomes(batch)

    return router
