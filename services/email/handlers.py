"""The email channel's subscriber: parse → deliver once to each recipient → record → announce.

A command carries one group's message with a chunk of its recipients; the ledger is per person, so a
redelivered chunk sends nothing to those already served. The consumer takes a few chunks at a time,
delivers them concurrently, and lets the offsets be committed only after every result is recorded.
"""

from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.bus import ALERT_BATCH_TIMEOUT_MS, ALERT_FETCH_WAIT_MS, Bus, bounded_failures, decode_each, raw_body
from services.common.delivery import deliver_many
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.email.sender import EmailSender, Mail

CONSUMER = "email"
CHUNKS_PER_BATCH = 4


def build_router(sender: EmailSender, ledger: Ledger, bus: Bus, policy: RetryPolicy | None = None,
                 concurrency: int = 16) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.EMAIL_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       batch=True, max_records=CHUNKS_PER_BATCH, ack_policy=AckPolicy.NACK_ON_ERROR,
                       decoder=raw_body, title="email:deliveries", fetch_max_wait_ms=ALERT_FETCH_WAIT_MS,
                       batch_timeout_ms=ALERT_BATCH_TIMEOUT_MS)
    async def on_email_delivery_requested(msg: KafkaMessage) -> None:
        commands = await decode_each(msg, SendEmail.model_validate_json, bus, CONSUMER)

        async def deliver(record: Any, body: bytes, command: SendEmail) -> None:
            # Each chunk is guarded on its own: a chunk the handler cannot deal with is dead-lettered alone.
            async with bounded_failures([(record, body)], bus, CONSUMER):
                await deliver_many(Mail.each_of(command), sender, ledger, bus, policy, concurrency)

        # One chunk after another (each sent concurrently inside): a chunk repeated in the batch (a
        # redelivery) then finds the first one's ledger rows and sends nothing twice.
        failed: list[BaseException] = []
        for received in commands:
            try:
                await deliver(*received)
            except Exception as exc:
                failed.append(exc)
        if failed:
            raise failed[0]  # the batch comes back; the ledger makes the chunks already served no-ops

    return router
