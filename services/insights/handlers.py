"""The insights service's subscriptions: what it hears of events (their titles and own links), of plans and
sent digests (how many were targeted), of outcomes (how many were reached) and of clicks (answers and
counted reads)."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import AddressBounced, DeliveryOutcomes, DigestSent, EventPlanned, FollowUpSent
from contracts.feedback import Acknowledged, FeedbackGiven, ItemRead
from services.common.bus import Bus
from services.common.subscriptions import Batch, subscribe, subscribe_batch
from services.insights.store import InsightsStore


def build_router(store: InsightsStore, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()
    subscribe(router, subscriptions.INSIGHTS_EVENTS, bus, store.record_event)

    async def on_counted(planned: EventPlanned | DigestSent | FollowUpSent) -> None:
        """How many each event's plan, each sent digest and each follow-up targeted (one consumer group)."""
        if isinstance(planned, DigestSent):
            await store.record_digest(planned)
        elif isinstance(planned, FollowUpSent):
            await store.record_follow_up(planned)
        elif planned.released:  # a held event's plan is counted once it goes out
            await store.record_plan(planned.plan)

    subscribe(router, subscriptions.INSIGHTS_PLANS, bus, on_counted)

    async def on_outcomes(batch: Batch[DeliveryOutcomes]) -> None:
        for state, reason in await store.record_outcomes(batch):
            batch.refuse(state, reason)

    subscribe_batch(router, subscriptions.INSIGHTS_OUTCOMES, bus, on_outcomes)

    async def on_clicks(batch: Batch[FeedbackGiven | ItemRead | Acknowledged]) -> None:
        """Answers, reads and acknowledgements, counted once per respondent (a later answer replaces the earlier
        one)."""
        await store.record_answers(c for c in batch if isinstance(c, FeedbackGiven))
        await store.record_reads(c for c in batch if isinstance(c, ItemRead))
        await store.record_acknowledgements(c for c in batch if isinstance(c, Acknowledged))

    subscribe_batch(router, subscriptions.INSIGHTS_CLICKS, bus, on_clicks)

    async def on_bounced(batch: Batch[AddressBounced]) -> None:
        """Addresses whose mail came back, counted per group."""
        await store.record_bounces(batch)

    subscribe_batch(router, subscriptions.INSIGHTS_BOUNCES, bus, on_bounced)
    return router
