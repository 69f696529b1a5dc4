"""The outbox relay: publishes accepted events to Kafka in the order they were accepted.

An event is in the outbox from the moment it is accepted; it is marked published only after Kafka
acknowledged it, so a crash republishes (at-least-once) and never loses.
"""

import asyncio
import logging

from services.common.bus import Bus
from services.gateway.store import GatewayStore, OutboxRow

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, store: GatewayStore, bus: Bus, batch: int = 200, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.bus = bus
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    async def requeue_unplanned(self) -> None:
        """At start: events accepted but never planned go out again (see GatewayStore.requeue_unplanned)."""
        count = await self.store.requeue_unplanned()
        if count:
            log.info("accepted events without a plan relayed again", extra={"count": count})

    async def relay_once(self) -> int:
        keys: list[str] = []

        async def publish(rows: list[OutboxRow]) -> None:
            await asyncio.gather(*(self.bus.publish_json(r.topic, r.payload.encode(), r.key) for r in rows))
            keys.extend(r.key for r in rows)

        count = await self.store.relay_pending(self.batch, publish)
        if count:
            log.info("relayed events", extra={"count": count, "keys": keys[:50]})
        return count

    async def run(self) -> None:
        while True:
            self._wake.clear()
            if await self.relay_once() == self.batch:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
