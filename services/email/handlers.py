"""The email channel's subscription: deliver once to each recipient → record → announce.

A command carries one group's message with a chunk of its recipients; the ledger is per person, so a
redelivered chunk sends nothing to those already served. The consumer takes a few chunks at a time, one
after another (each sent concurrently inside, each bounded on its own: a chunk that cannot be handled is
dead-lettered alone), and the offsets are committed only after every result is recorded.
"""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import SendEmail
from services.common.bus import Bus
from services.common.delivery import deliver_many
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.common.subscriptions import subscribe
from services.email.sender import EmailSender, Mail


def build_router(sender: EmailSender, ledger: Ledger, bus: Bus, policy: RetryPolicy | None = None,
                 concurrency: int = 16) -> KafkaRouter:
    router = KafkaRouter()

    async def on_chunk(command: SendEmail) -> None:
        await deliver_many(Mail.each_of(command), sender, ledger, bus, policy, concurrency)

    subscribe(router, subscriptions.EMAIL_DELIVERIES, bus, on_chunk)
    return router
