"""The Teams channel's sender interface and where each target group's webhook comes from.

Webhook URLs are secrets: they never travel on the bus. The Teams service resolves a group's URL
itself, from the environment variable its programme file names, or the local sink in embedded mode.
"""

from collections.abc import Mapping
from typing import Protocol

from contracts.deliveries import SendTeamsCard
from programs import Program
from services.common.delivery import Delivery

#: One card to one group's channel (the group is the command's audience).
CardDelivery = Delivery[SendTeamsCard]
#: (programme, target group) → webhook URL.
Webhooks = Mapping[tuple[str, str], str]


class TeamsSender(Protocol):
    """Post one card; return the attempts it took, or raise TransientDeliveryError (ChannelUnavailable when
    the host cannot be reached) or PermanentDeliveryError with the receiver's reason."""

    async def send(self, delivery: CardDelivery, /) -> int: ...


def resolve_webhooks(programs: Mapping[str, Program], environ: Mapping[str, str], sink_url: str | None) -> dict[
        tuple[str, str], str]:
    """Each Teams group's webhook: its secret from the environment, or the local sink in embedded mode."""
    hooks: dict[tuple[str, str], str] = {}
    for program in programs.values():
        for audience in program.audiences:
            if "teams" not in audience.channels:
                continue
            url = environ.get(audience.teams_webhook_env or "", "")
            if not url and sink_url:
                url = f"{sink_url.rstrip('/')}/{audience.id}"
            if url:
                hooks[(program.program, audience.id)] = url
    return hooks
