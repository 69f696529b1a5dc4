"""The gateway listens to plans, outcomes and dead letters so that GET /v1/events/{id} and
/v1/dead-letters can report without reading other services' tables."""

import logging

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import DeadLetter, DeliveryOutcomes, EventPlanned
from services.common.bus import Bus, bounded_failures, decode_batch, decode_or_dead_letter, raw_body, records_of
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.store import GatewayStore

CONSUMER = "gateway"
OUTCOME_BATCHES = 20  # messages per poll, each up to OUTCOMES_PER_MESSAGE outcomes
log = logging.getLogger(__name__)


def build_router(store: GatewayStore, dead_letter_store: DeadLetterStore, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EVENT_PLANNED, group_id=f"{CONSUMER}-plans", auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="gateway:plans")
    async def on_event_planned(msg: KafkaMessage) -> None:
        planned = await decode_or_dead_letter(msg, EventPlanned.model_validate_json, bus, CONSUMER)
        if planned is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_plan(planned)

    @router.subscriber(topics.DELIVERY_OUTCOMES, group_id=f"{CONSUMER}-outcomes", auto_offset_reset="earliest",
                       batch=True, max_records=OUTCOME_BATCHES, ack_policy=AckPolicy.NACK_ON_ERROR,
                       decoder=raw_body, title="gateway:outcomes")
    async def on_delivery_outcomes(msg: KafkaMessage) -> None:
        batch = [o for b in await decode_batch(msg, DeliveryOutcomes.model_validate_json, bus, CONSUMER)
                 for o in b.outcomes]
        if batch:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_outcomes(batch)

    @router.subscriber(topics.DEAD_LETTER, group_id=f"{CONSUMER}-dead-letters", auto_offset_reset="earliest",
                       batch=True, max_records=200, ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="gateway:dead-letters")
    async def on_dead_letters(msg: KafkaMessage) -> None:
        letters = []
        for record, body in records_of(msg):
            try:
                letter = DeadLetter.model_validate_json(body)
            except ValueError:  # never dead-letter a dead letter: it would go round for ever
                log.warning("unreadable dead letter skipped", extra={"offset": getattr(record, "offset", None)})
                continue
            key = record.key.decode(errors="replace") if getattr(record, "key", None) else ""
            letters.append((letter, key))
        if letters:
            async with bounded_failures(msg, bus, CONSUMER):
                await dead_letter_store.keep(letters)

    return router
