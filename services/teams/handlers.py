"""The Teams channel's subscription: deliver once → record → announce."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from contracts.deliveries import SendTeamsCard
from services.common.bus import Bus
from services.common.delivery import Delivery, deliver_many
from services.common.ledger import Ledger
from services.common.retry import RetryPolicy
from services.common.subscriptions import subscribe
from services.teams.sender import TeamsSender


def build_router(sender: TeamsSender, ledger: Ledger, bus: Bus, policy: RetryPolicy | None = None) -> KafkaRouter:
    router = KafkaRouter()

    async def on_command(command: SendTeamsCard) -> None:
        await deliver_many([Delivery(command, None)], sender, ledger, bus, policy)

    subscribe(router, subscriptions.TEAMS_DELIVERIES, bus, on_command)
    return router
