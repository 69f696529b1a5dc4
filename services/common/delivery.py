"""What every channel shares: the adapter errors, the delivery ledger, and the deliver-once step.

A delivery ledger row keyed by the command's delivery key is written before the offset is committed;
a redelivered command finds its row, sends nothing and re-announces the recorded outcome.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import Channel, DeliveryOutcome
from services.common.bus import Bus
from services.common.db import upsert

log = logging.getLogger(__name__)

DELIVERIES = Counter("budkavle_deliveries_total", "Delivery attempts by outcome", ["channel", "status"])


class DeliveryError(Exception):
    def __init__(self, reason: str, attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class TransientDeliveryError(DeliveryError):
    """The channel may accept the message later (SMTP 4xx, HTTP 429/5xx, connection lost)."""


class PermanentDeliveryError(DeliveryError):
    """The channel refused the message for good (SMTP 5xx, HTTP 4xx, a forbidden webhook)."""


class Deliverable(Protocol):
    @property
    def event_id(self) -> UUID: ...

    @property
    def program(self) -> str: ...

    @property
    def audience_id(self) -> str: ...

    @property
    def delivery_key(self) -> str: ...


@dataclass(frozen=True)
class LedgerEntry:
    status: str
    reason: str | None
    attempts: int


def ledger_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name, metadata,
        Column("delivery_key", String(250), primary_key=True),
        Column("event_id", String(36), nullable=False, index=True),
        Column("audience_id", String(64), nullable=False),
        Column("recipient_id", String(128), nullable=True),
        Column("status", String(16), nullable=False),
        Column("reason", Text, nullable=True),
        Column("attempts", Integer, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
    )


class Ledger:
    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        self.engine = engine
        self.table = table

    async def lookup(self, key: str) -> LedgerEntry | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(self.table).where(self.table.c.delivery_key == key))).first()
        return LedgerEntry(row.status, row.reason, row.attempts) if row else None

    async def record(self, cmd: Deliverable, recipient_id: str | None, entry: LedgerEntry) -> None:
        async with self.engine.begin() as conn:
            await upsert(conn, self.table, {
                "delivery_key": cmd.delivery_key, "event_id": str(cmd.event_id), "audience_id": cmd.audience_id,
                "recipient_id": recipient_id, "status": entry.status, "reason": entry.reason,
                "attempts": entry.attempts, "at": datetime.now(UTC)}, ("delivery_key",))


async def deliver_once(
    cmd: Deliverable,
    channel: Channel,
    recipient_id: str | None,
    send: Callable[[], Awaitable[int]],
    ledger: Ledger,
    bus: Bus,
) -> LedgerEntry:
    """Send unless the ledger says it was done; record the result, then announce it on the outcomes topic.

    `send` returns the number of attempts it took and raises a DeliveryError when it gives up.
    """
    entry = await ledger.lookup(cmd.delivery_key)
    if entry is None:
        try:
            attempts = await send()
            entry = LedgerEntry("sent", None, attempts)
        except DeliveryError as exc:
            kind = "temporary" if isinstance(exc, TransientDeliveryError) else "permanent"
            entry = LedgerEntry("failed", f"{kind}: {exc.reason}"[:2000], exc.attempts)
            log.warning("delivery failed", extra={"event_id": str(cmd.event_id), "channel": channel,
                                                  "audience_id": cmd.audience_id, "reason": entry.reason})
        await ledger.record(cmd, recipient_id, entry)
        DELIVERIES.labels(channel, entry.status).inc()
    else:
        log.info("redelivered command found in ledger; nothing sent twice",
                 extra={"event_id": str(cmd.event_id), "channel": channel})
    outcome = DeliveryOutcome(event_id=cmd.event_id, program=cmd.program, channel=channel,
                              audience_id=cmd.audience_id, recipient_id=recipient_id, status=entry.status,
                              reason=entry.reason, attempts=entry.attempts, at=datetime.now(UTC))
    await bus.publish(topics.DELIVERY_OUTCOMES, outcome, key=recipient_id or cmd.audience_id)
    return entry
