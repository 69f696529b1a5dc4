"""The insights service's subscriptions: what it hears of events (their titles and own links), of plans and
sent digests (how many were targeted), of outcomes (how many were reached) and of clicks (answers and
counted reads)."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import DeliveryOutcomes, DigestSent, EventPlanned
from contracts.feedback import FeedbackGiven, ItemRead
from services.common.bus import Bus
from services.common.subscriptions import Batch, subscribe, subscribe_batch
from services.insights.store import InsightsStore


def build_router(store: InsightsStore, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()
    subscribe(router, subscriptions.INSIGHTS_EVENTS, bus, store.record_event)

    async def on_counted(planned: EventPlanned | DigestSent) -> None:
        """How many each event's plan and each sent digest targeted (one consumer group for both)."""
        if isinstance(planned, DigestSent):
            await store.record_digest(planned)
        elif planned.released:  # a held event's plan is counted once it goes out
            await store.record_plan(planned.plan)

    subscribe(router, subscriptions.INSIGHTS_PLANS, bus, on_counted)

    async def on_outcomes(batch: Batch[DeliveryOutcomes]) -> None:
        for state, reason in await store.record_outcomes(batch):
            batch.refuse(state, reason)

    subscribe_batch(router, subscriptions.INSIGHTS_OUTCOMES, bus, on_outcomes)

    async def on_clicks(batch: Batch[FeedbackGiven | ItemRead]) -> None:
        """Answers and reads, counted once per respondent (a later answer replaces the earlier one)."""
        await store.record_answers(c for c in batch if isinstance(c, FeedbackGiven))
        await store.record_reads(c for c in batch if isinstance(c, ItemRead))

    subscribe_batch(router, subscriptions.INSIGHTS_CLICKS, bus, on_clicks)
    return router
