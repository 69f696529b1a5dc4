"""What every channel shares: the sender interface and its errors, the delivery ledger, and the
deliver-once step.

A delivery ledger row keyed by (event, recipient or group, channel) is written before the offset is
committed; a redelivered command finds its rows, sends nothing and re-announces the recorded outcomes.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeliveryCommand, DeliveryOutcome
from services.common.bus import Bus, DependencyUnavailable
from services.common.db import upsert_many

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


class ChannelUnavailable(TransientDeliveryError, DependencyUnavailable):
    """The channel itself cannot be reached (connection refused, lost, timed out). Nothing is recorded as
    failed: the batch is handed back to the bus and tried again, with back-off, until the channel is back."""


C = TypeVar("C", bound=DeliveryCommand)
D = TypeVar("D", bound="Delivery[Any]")
D_contra = TypeVar("D_contra", bound="Delivery[Any]", contravariant=True)


@dataclass(frozen=True)
class Delivery(Generic[C]):
    """One delivery of a command: to one person (`recipient_id`), or to the command's group (None)."""

    command: C
    recipient_id: str | None

    @property
    def key(self) -> str:
        return self.command.delivery_key(self.recipient_id)


class Sender(Protocol[D_contra]):
    """What every channel adapter is: send one delivery, return the attempts it took, or raise a
    TransientDeliveryError / PermanentDeliveryError (ChannelUnavailable when the channel is down)."""

    async def send(self, delivery: D_contra, /) -> int: ...


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
        return (await self.lookup_many([key])).get(key)

    async def lookup_many(self, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                rows = (await conn.execute(select(self.table).where(
                    self.table.c.delivery_key.in_(list(keys[start:start + 500]))))).all()
                found.update({r.delivery_key: LedgerEntry(r.status, r.reason, r.attempts) for r in rows})
        return found

    async def record_many(self, results: Sequence[tuple[Delivery[Any], LedgerEntry]]) -> None:
        now = datetime.now(UTC)
        rows = [{"delivery_key": d.key, "event_id": str(d.command.event_id), "audience_id": d.command.audience_id,
                 "recipient_id": d.recipient_id, "status": entry.status, "reason": entry.reason,
                 "attempts": entry.attempts, "at": now} for d, entry in results]
        async with self.engine.begin() as conn:
            await upsert_many(conn, self.table, rows, ("delivery_key",))


async def _attempt(delivery: D, sender: Sender[D]) -> LedgerEntry:
    """The ledger entry for one send; ChannelUnavailable (and anything unexpected) propagates."""
    try:
        return LedgerEntry("sent", None, await sender.send(delivery))
    except ChannelUnavailable:
        raise
    except DeliveryError as exc:
        kind = "temporary" if isinstance(exc, TransientDeliveryError) else "permanent"
        entry = LedgerEntry("failed", f"{kind}: {exc.reason}"[:2000], exc.attempts)
        cmd = delivery.command
        log.warning("delivery failed", extra={"event_id": str(cmd.event_id), "channel": cmd.channel,
                                              "audience_id": cmd.audience_id, "reason": entry.reason})
        return entry


async def deliver_many(deliveries: Sequence[D], sender: Sender[D], ledger: Ledger, bus: Bus,
                       concurrency: int = 16) -> list[LedgerEntry]:
    """Send what the ledger has not seen, record the results, then announce every outcome.

    One ledger query and one ledger transaction per batch, however large. A delivery repeated in the
    batch (a redelivery) is sent once and announced for each copy. The sender returns the attempts it
    took and raises a DeliveryError when it gives up; the result is recorded before the caller lets
    the offsets be committed.
    """
    known = await ledger.lookup_many([d.key for d in deliveries])
    todo: dict[str, D] = {}
    for delivery in deliveries:
        if delivery.key not in known:
            todo.setdefault(delivery.key, delivery)
    if known:
        log.info("redelivered deliveries found in ledger; nothing sent twice",
                 extra={"channel": deliveries[0].command.channel, "count": len(known)})
    limit = asyncio.Semaphore(concurrency)

    async def attempt(delivery: D) -> LedgerEntry:
        async with limit:
            return await _attempt(delivery, sender)

    results = await asyncio.gather(*(attempt(d) for d in todo.values()), return_exceptions=True)
    fresh = {k: r for k, r in zip(todo, results, strict=True) if isinstance(r, LedgerEntry)}
    unavailable = [r for r in results if isinstance(r, BaseException)]
    if fresh:
        await ledger.record_many([(todo[k], e) for k, e in fresh.items()])
        for key, entry in fresh.items():
            DELIVERIES.labels(todo[key].command.channel, entry.status).inc()
    entries = {**known, **fresh}
    now = datetime.now(UTC)
    await asyncio.gather(*(
        bus.publish(topics.DELIVERY_OUTCOMES, _outcome(d, entries[d.key], now), key=d.recipient_id or d.command.audience_id)
        for d in deliveries if d.key in entries))
    if unavailable:
        # What was sent is recorded and announced; the rest goes back to the bus (the ledger keeps the
        # redelivered batch from sending anything twice).
        log.warning("channel unavailable; batch handed back for redelivery",
                    extra={"channel": deliveries[0].command.channel, "pending": len(unavailable),
                           "reason": str(unavailable[0])[:300]})
        raise unavailable[0]
    return [entries[d.key] for d in deliveries]


def _outcome(delivery: Delivery[Any], entry: LedgerEntry, at: datetime) -> DeliveryOutcome:
    cmd = delivery.command
    return DeliveryOutcome(event_id=cmd.event_id, program=cmd.program, channel=cmd.channel, audience_id=cmd.audience_id,
                           recipient_id=delivery.recipient_id, status=entry.status, reason=entry.reason,
                           attempts=entry.attempts, at=at)
