"""The intranet channel's subscriptions: a delivery (store once → announce), and a session ended by sign-out
(its cookie opens no internal item here any more)."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import PublishIntranetItem
from services.common.bus import Bus
from services.common.delivery import Delivery, deliver_many
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.common.subscriptions import subscribe
from services.intranet.sender import IntranetPublisher


def build_router(publisher: IntranetPublisher, ledger: Ledger, bus: Bus, ended: EndedSessions,
                 policy: RetryPolicy | None = None) -> KafkaRouter:
    router = KafkaRouter()

    async def on_command(command: PublishIntranetItem) -> None:
        await deliver_many([Delivery(command, None)], publisher, ledger, bus, policy)

    subscribe(router, subscriptions.INTRANET_DELIVERIES, bus, on_command)
    subscribe(router, subscriptions.INTRANET_SESSIONS, bus, ended.end)
    return router
