"""The intranet channel's subscriber: parse → store once → announce."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import PublishIntranetItem
from services.common.bus import ALERT_FETCH_WAIT_MS, Bus, bounded_failures, decode_or_dead_letter, raw_body
from services.common.delivery import Delivery, deliver_many
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.intranet.sender import IntranetPublisher

CONSUMER = "intranet"


def build_router(publisher: IntranetPublisher, ledger: Ledger, bus: Bus,
                 policy: RetryPolicy | None = None) -> KafkaRouter:
    router = KafkaRouter()

    @router.subscriber(topics.INTRANET_DELIVERY_REQUESTED, group_id=CONSUMER, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="intranet:deliveries",
                       fetch_max_wait_ms=ALERT_FETCH_WAIT_MS)
    async def on_intranet_delivery_requested(msg: KafkaMessage) -> None:
        cmd = await decode_or_dead_letter(msg, PublishIntranetItem.model_validate_json, bus, CONSUMER)
        if cmd is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await deliver_many([Delivery(cmd, None)], publisher, ledger, bus, policy)

    return router
