"""The insights service's subscribers: what it hears of events (their titles and own links), of plans and
sent digests (how many were targeted), of outcomes (how many were reached) and of clicks (answers and
counted reads)."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import topics
from contracts.deliveries import DeliveryOutcomes, DigestSent, EventPlanned
from contracts.events import parse_event
from contracts.feedback import FeedbackGiven, ItemRead
from services.common.bus import Bus, bounded_failures, decode_batch, decode_each, decode_or_dead_letter, raw_body
from services.insights.store import InsightsStore

CONSUMER = "insights"

_CLICK = TypeAdapter(FeedbackGiven | ItemRead)
_PLANNED = TypeAdapter(EventPlanned | DigestSent)


def build_router(store: InsightsStore, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(*topics.EVENT_TOPICS.values(), group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="insights:events")
    async def on_event(msg: KafkaMessage) -> None:
        event = await decode_or_dead_letter(msg, parse_event, bus, CONSUMER)
        if event is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_event(event)

    @router.subscriber(topics.EVENT_PLANNED, topics.DIGEST_SENT, group_id=f"{CONSUMER}-plans",
                       auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="insights:plans")
    async def on_planned(msg: KafkaMessage) -> None:
        """How many each event's plan and each sent digest targeted (one consumer group for both)."""
        planned = await decode_or_dead_letter(msg, _PLANNED.validate_json, bus, CONSUMER)
        if planned is None or (isinstance(planned, EventPlanned) and planned.status != "planned"):
            return  # an embargoed event's plan: counted once it goes out
        async with bounded_failures(msg, bus, CONSUMER):
            if isinstance(planned, DigestSent):
                await store.record_digest(planned)
            else:
                await store.record_plan(planned.plan)

    @router.subscriber(topics.DELIVERY_OUTCOMES, group_id=f"{CONSUMER}-outcomes", auto_offset_reset="earliest",
                       batch=True, max_records=20, ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="insights:outcomes")
    async def on_delivery_outcomes(msg: KafkaMessage) -> None:
        batch = [o for b in await decode_batch(msg, DeliveryOutcomes.model_validate_json, bus, CONSUMER)
                 for o in b.outcomes]
        if batch:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_outcomes(batch)

    @router.subscriber(topics.FEEDBACK_GIVEN, topics.ITEM_READ, group_id=f"{CONSUMER}-clicks",
                       auto_offset_reset="earliest", batch=True, max_records=500, ack_policy=AckPolicy.NACK_ON_ERROR,
                       decoder=raw_body, title="insights:clicks")
    async def on_clicks(msg: KafkaMessage) -> None:
        """Answers and reads, counted once per respondent (a later answer replaces the earlier one)."""
        clicks = [c for _record, _body, c in await decode_each(msg, _CLICK.validate_json, bus, CONSUMER)]
        if clicks:
            async with bounded_failures(msg, bus, CONSUMER):
                await store.record_answers(c for c in clicks if isinstance(c, FeedbackGiven))
                await store.record_reads(c for c in clicks if isinstance(c, ItemRead))

    return router
