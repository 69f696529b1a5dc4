"""The email channel's subscriber: parse → deliver once → record → announce."""

from collections.abc import Awaitable, Callable

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import Bus, decode_or_dead_letter, raw_body
from services.common.delivery import Ledger, deliver_once

CONSUMER = "email"
SendFn = Callable[[SendEmail], Awaitable[int]]


def build_router(send: SendFn, ledger: Ledger, bus: Bus) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EMAIL_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="email:deliveries")
    async def on_email_delivery_requested(msg: KafkaMessage) -> None:
        cmd = await decode_or_dead_letter(msg, SendEmail.model_validate_json, bus, CONSUMER)
        if cmd is not None:
            await deliver_once(cmd, "email", cmd.recipient_id, lambda: send(cmd), ledger, bus)

    return router
