"""The email channel's subscriber: parse → deliver once to each recipient → record → announce.

A command carries one group's message with a chunk of its recipients; the ledger is per person, so a
redelivered chunk sends nothing to those already served. The consumer takes a few chunks at a time,
delivers them concurrently, and lets the offsets be committed only after every result is recorded.
"""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import Bus, decode_batch, raw_body
from services.common.delivery import Ledger, deliver_many
from services.email.sender import EmailSender, Mail

CONSUMER = "email"
CHUNKS_PER_BATCH = 4


def build_router(sender: EmailSender, ledger: Ledger, bus: Bus, concurrency: int = 16) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EMAIL_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       batch=True, max_records=CHUNKS_PER_BATCH, ack_policy=AckPolicy.NACK_ON_ERROR,
                       decoder=raw_body, title="email:deliveries")
    async def on_email_delivery_requested(msg: KafkaMessage) -> None:
        commands = await decode_batch(msg, SendEmail.model_validate_json, bus, CONSUMER)
        mails = [mail for command in commands for mail in Mail.each_of(command)]
        if mails:
            await deliver_many(mails, sender, ledger, bus, concurrency)

    return router
