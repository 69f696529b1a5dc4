"""The email channel's subscriber: parse → deliver once → record → announce.

Email is the one high-volume channel (thousands of people per event), so it consumes in batches
and delivers a batch concurrently; the batch's offsets are committed only after every message in it
is recorded, and a failure rewinds the whole batch (the ledger keeps redelivery from sending twice).
"""

from collections.abc import Awaitable, Callable

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import Bus, decode_batch, raw_body
from services.common.delivery import Ledger, deliver_many

CONSUMER = "email"
BATCH = 200
SendFn = Callable[[SendEmail], Awaitable[int]]


def build_router(send: SendFn, ledger: Ledger, bus: Bus, concurrency: int = 16) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EMAIL_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       batch=True, max_records=BATCH, ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body,
                       title="email:deliveries")
    async def on_email_delivery_requested(msg: KafkaMessage) -> None:
        commands = await decode_batch(msg, SendEmail.model_validate_json, bus, CONSUMER)
        await deliver_many(commands, "email", lambda c: c.recipient_id, send, ledger, bus, concurrency)

    return router
