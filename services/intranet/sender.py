"""The intranet channel's sender interface: publishing an item (the store implements it; the pages serve it)."""

from typing import Protocol

from contracts.deliveries import PublishIntranetItem
from services.common.delivery import Delivery


class IntranetPublisher(Protocol):
    """Publish one item; return the attempts it took, or raise a DeliveryError."""

    async def send(self, delivery: Delivery[PublishIntranetItem], /) -> int: ...
