"""The tailor's subscriptions: events (tailor → record), the scheduler's word that time has come (a digest, a
release), the channels' outcomes (which planned deliveries ended), people's choices, acknowledgements and
bounces."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import AddressBounced, DeliveryOutcomes
from contracts.feedback import Acknowledged
from contracts.preferences import PreferencesChanged
from contracts.schedule import DigestDue, ReleaseDue
from services.common.bus import Bus
from services.common.subscriptions import Batch, subscribe, subscribe_batch
from services.tailor.service import Tailor


def build_router(tailor: Tailor, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()
    subscribe(router, subscriptions.TAILOR_EVENTS, bus, tailor.on_event)

    async def on_schedule_due(due: DigestDue | ReleaseDue) -> None:
        if isinstance(due, ReleaseDue):
            await tailor.release(due.event_id)
        else:
            await tailor.send_digest(due)

    subscribe(router, subscriptions.TAILOR_SCHEDULE, bus, on_schedule_due)
    subscribe(router, subscriptions.TAILOR_CANCELLED, bus, tailor.cancel)

    async def on_outcomes(batch: Batch[DeliveryOutcomes]) -> None:
        """Which planned deliveries ended: the tailor's own record of what it need not emit again."""
        counted = await tailor.store.record_done(batch)
        for state, reason in counted.refused:
            batch.refuse(state, reason)

    subscribe_batch(router, subscriptions.TAILOR_OUTCOMES, bus, on_outcomes)

    async def on_preferences(batch: Batch[PreferencesChanged]) -> None:
        """The tailor's own read model of people's choices, honoured in the very next send."""
        await tailor.store.record_preferences(batch)

    subscribe_batch(router, subscriptions.TAILOR_PREFERENCES, bus, on_preferences)

    async def on_acknowledged(batch: Batch[Acknowledged]) -> None:
        """Who acknowledged must-know news through their own link: the next reminder leaves them out."""
        await tailor.reminders.store.record_acknowledgements(batch)

    subscribe_batch(router, subscriptions.TAILOR_ACKNOWLEDGED, bus, on_acknowledged)

    async def on_bounced(batch: Batch[AddressBounced]) -> None:
        """Mail that came back: the next plans leave an undeliverable address out."""
        await tailor.bounces.record(batch)

    subscribe_batch(router, subscriptions.TAILOR_BOUNCES, bus, on_bounced)
    return router
