"""The Teams channel's subscriber: parse → deliver once → record → announce."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import SendTeamsCard
from services.common.bus import ALERT_FETCH_WAIT_MS, Bus, bounded_failures, decode_or_dead_letter, raw_body
from services.common.delivery import Delivery, deliver_many
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.teams.sender import TeamsSender

CONSUMER = "teams"


def build_router(sender: TeamsSender, ledger: Ledger, bus: Bus, policy: RetryPolicy | None = None) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.TEAMS_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="teams:deliveries",
                       fetch_max_wait_ms=ALERT_FETCH_WAIT_MS)
    async def on_teams_delivery_requested(msg: KafkaMessage) -> None:
        cmd = await decode_or_dead_letter(msg, SendTeamsCard.model_validate_json, bus, CONSUMER)
        if cmd is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await deliver_many([Delivery(cmd, None)], sender, ledger, bus, policy)

    return router
