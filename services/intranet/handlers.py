"""The intranet channel's subscribers: a delivery (parse → store once → announce), and a session ended by
sign-out (its cookie opens no internal item here any more)."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from contracts import topics
from contracts.deliveries import PublishIntranetItem
from contracts.people import SessionEnded
from services.common.bus import ALERT_FETCH_WAIT_MS, Bus, bounded_failures, decode_or_dead_letter, raw_body
from services.common.delivery import Delivery, deliver_many
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.intranet.sender import IntranetPublisher

CONSUMER = "intranet"


def build_router(publisher: IntranetPublisher, ledger: Ledger, bus: Bus, ended: EndedSessions,
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

    @router.subscriber(topics.SESSION_ENDED, group_id=f"{CONSUMER}-sessions", auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR, decoder=raw_body, title="intranet:sessions")
    async def on_session_ended(msg: KafkaMessage) -> None:
        over = await decode_or_dead_letter(msg, SessionEnded.model_validate_json, bus, CONSUMER)
        if over is not None:
            async with bounded_failures(msg, bus, CONSUMER):
                await ended.end(over)

    return router
