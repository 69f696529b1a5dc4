"""The gateway listens to plans, outcomes and dead letters so that GET /v1/events/{id} and
/v1/dead-letters can report without reading other services' tables, and to sessions ended by sign-out, so
that a person's session passed on by the console opens nothing after."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import DeadLetter, DeliveryOutcomes
from services.common.bus import Bus
from services.common.ended_sessions import EndedSessions
from services.common.subscriptions import Batch, subscribe, subscribe_batch
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.store import GatewayStore


def build_router(store: GatewayStore, dead_letter_store: DeadLetterStore, bus: Bus, ended: EndedSessions) -> KafkaRouter:
    router = KafkaRouter()
    subscribe(router, subscriptions.GATEWAY_PLANS, bus, store.record_plan)
    subscribe(router, subscriptions.GATEWAY_SESSIONS, bus, ended.end)

    async def on_outcomes(batch: Batch[DeliveryOutcomes]) -> None:
        for state, reason in await store.record_outcomes(batch):
            batch.refuse(state, reason)

    subscribe_batch(router, subscriptions.GATEWAY_OUTCOMES, bus, on_outcomes)

    async def on_dead_letters(batch: Batch[DeadLetter]) -> None:
        await dead_letter_store.keep(list(zip(batch, batch.keys, strict=True)))

    subscribe_batch(router, subscriptions.GATEWAY_DEAD_LETTERS, bus, on_dead_letters)
    return router
