"""The tailor's subscriber: parse → tailor → record. Invalid or unprocessable events go to the dead-letter topic."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.events import parse_event
from services.common.bus import Bus, bounded_failures, dead_letter, decode_or_dead_letter, raw_body
from services.tailor.planning import UnknownAudienceError
from services.tailor.service import Tailor, UnprocessableEvent

CONSUMER = "tailor"


def build_router(tailor: Tailor, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(*topics.EVENT_TOPICS.values(), group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="tailor:events")
    async def on_event(msg: KafkaMessage) -> None:
        event = await decode_or_dead_letter(msg, parse_event, bus, CONSUMER)
        if event is None:
            return
        async with bounded_failures(msg, bus, CONSUMER):
            try:
                await tailor.on_event(event)
            except (UnprocessableEvent, UnknownAudienceError) as exc:
                await dead_letter(msg, bus, CONSUMER, str(exc))

    return router
