"""The tailor's subscribers: events (parse → tailor → record; invalid or unprocessable ones go to the dead-letter
topic), the scheduler's word that time has come (a digest, a release), and the channels' outcomes (which
planned deliveries ended)."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import DeliveryOutcomes
from contracts.events import parse_event
from contracts.preferences import PreferencesChanged
from contracts.schedule import ScheduleDue
from services.common.bus import (
    ALERT_FETCH_WAIT_MS,
    Bus,
    bounded_failures,
    dead_letter,
    decode_batch,
    decode_or_dead_letter,
    raw_body,
)
from services.tailor.planning import UnknownAudienceError
from services.tailor.service import Tailor, UnprocessableEvent

CONSUMER = "tailor"
OUTCOME_BATCHES = 20  # messages per poll, each up to OUTCOMES_PER_MESSAGE outcomes


def build_router(tailor: Tailor, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(*topics.EVENT_TOPICS.values(), group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="tailor:events",
                       fetch_max_wait_ms=ALERT_FETCH_WAIT_MS)
    async def on_event(msg: KafkaMessage) -> None:
        event = await decode_or_dead_letter(msg, parse_event, bus, CONSUMER)
        if event is None:
            return
        async with bounded_failures(msg, bus, CONSUMER):
            try:
                await tailor.on_event(event)
            except (UnprocessableEvent, UnknownAudienceError) as exc:
                await dead_letter(msg, bus, CONSUMER, str(exc))

    @router.subscriber(topics.DELIVERY_OUTCOMES, group_id=f"{CONSUMER}-outcomes", auto_offset_reset="earliest",
                       batch=True, max_records=OUTCOME_BATCHES, ack_policy=AckPolicy.NACK_ON_ERROR,
                       decoder=raw_body, title="tailor:outcomes")
    async def on_delivery_outcomes(msg: KafkaMessage) -> None:
        """Which planned deliveries ended: the tailor's own record of what it need not emit again."""
        batch = [o for b in await decode_batch(msg, DeliveryOutcomes.model_validate_json, bus, CONSUMER)
                 for o in b.outcomes]
        if batch:
            async with bounded_failures(msg, bus, CONSUMER):
                await tailor.store.record_done(batch)

    @router.subscriber(topics.PREFERENCES_CHANGED, group_id=f"{CONSUMER}-preferences", auto_offset_reset="earliest",
                       batch=True, max_records=500, ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="tailor:preferences")
    async def on_preferences_changed(msg: KafkaMessage) -> None:
        """The tailor's own read model of people's choices, honoured in the very next send."""
        changes = await decode_batch(msg, PreferencesChanged.model_validate_json, bus, CONSUMER)
        if changes:
            async with bounded_failures(msg, bus, CONSUMER):
                await tailor.store.record_preferences(changes)

    @router.subscriber(topics.SCHEDULE_DUE, group_id=f"{CONSUMER}-schedule", auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="tailor:schedule")
    async def on_schedule_due(msg: KafkaMessage) -> None:
        due = await decode_or_dead_letter(msg, ScheduleDue.model_validate_json, bus, CONSUMER)
        if due is None:
            return
        async with bounded_failures(msg, bus, CONSUMER):
            try:
                if due.kind == "release":
                    assert due.event_id is not None
                    await tailor.release(due.event_id)
                else:
                    await tailor.send_digest(due)
            except (UnprocessableEvent, UnknownAudienceError) as exc:
                await dead_letter(msg, bus, CONSUMER, str(exc))

    return router
