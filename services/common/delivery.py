"""What every channel shares: the adapter errors, the delivery ledger, and the deliver-once step.

A delivery ledger row keyed by the command's delivery key is written before the offset is committed;
a redelivered command finds its row, sends nothing and re-announces the recorded outcome.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import Channel, DeliveryOutcome
from services.common.bus import Bus
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


class ChannelUnavailable(TransientDeliveryError):
    """The channel itself cannot be reached (connection refused, lost, timed out). Nothing is recorded as
    failed: the batch is handed back to the bus and tried again, with back-off, until the channel is back."""


class Deliverable(Protocol):
    @property
    def event_id(self) -> UUID: ...

    @property
    def program(self) -> str: ...

    @property
    def audience_id(self) -> str: ...

    @property
    def delivery_key(self) -> str: ...


D = TypeVar("D", bound=Deliverable)


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

    async def record(self, cmd: Deliverable, recipient_id: str | None, entry: LedgerEntry) -> None:
        await self.record_many([(cmd, recipient_id, entry)])

    async def record_many(self, results: Sequence[tuple[Deliverable, str | None, LedgerEntry]]) -> None:
        now = datetime.now(UTC)
        rows = [{"delivery_key": cmd.delivery_key, "event_id": str(cmd.event_id), "audience_id": cmd.audience_id,
                 "recipient_id": recipient_id, "status": entry.status, "reason": entry.reason,
                 "attempts": entry.attempts, "at": now} for cmd, recipient_id, entry in results]
        async with self.engine.begin() as conn:
            await upsert_many(conn, self.table, rows, ("delivery_key",))


async def _attempt(cmd: Deliverable, channel: Channel, send: Callable[[], Awaitable[int]]) -> LedgerEntry:
    """The ledger entry for one send; ChannelUnavailable (and anything unexpected) propagates."""
    try:
        return LedgerEntry("sent", None, await send())
    except ChannelUnavailable:
        raise
    except DeliveryError as exc:
        kind = "temporary" if isinstance(exc, TransientDeliveryError) else "permanent"
        entry = LedgerEntry("failed", f"{kind}: {exc.reason}"[:2000], exc.attempts)
        log.warning("delivery failed", extra={"event_id": str(cmd.event_id), "channel": channel,
                                              "audience_id": cmd.audience_id, "reason": entry.reason})
        return entry


async def deliver_many(
    cmds: Sequence[D],
    channel: Channel,
    recipient_of: Callable[[D], str | None],
    send: Callable[[D], Awaitable[int]],
    ledger: Ledger,
    bus: Bus,
    concurrency: int = 16,
) -> list[LedgerEntry]:
    """Send what the ledger has not seen, record the results, then announce every outcome.

    One ledger query and one ledger transaction per batch, however large. A command repeated in the
    batch (a redelivery) is sent once and announced for each copy. `send` returns the attempts it
    took and raises a DeliveryError when it gives up; the result is recorded before the caller lets
    the offsets be committed.
    """
    known = await ledger.lookup_many([c.delivery_key for c in cmds])
    todo: dict[str, D] = {}
    for cmd in cmds:
        if cmd.delivery_key not in known:
            todo.setdefault(cmd.delivery_key, cmd)
    if len(known):
        log.info("redelivered commands found in ledger; nothing sent twice",
                 extra={"channel": channel, "count": len(known)})
    limit = asyncio.Semaphore(concurrency)

    async def attempt(cmd: D) -> LedgerEntry:
        async with limit:
            return await _attempt(cmd, channel, lambda: send(cmd))

    results = await asyncio.gather(*(attempt(c) for c in todo.values()), return_exceptions=True)
    fresh = {k: r for k, r in zip(todo, results, strict=True) if isinstance(r, LedgerEntry)}
    unavailable = [r for r in results if isinstance(r, BaseException)]
    if fresh:
        await ledger.record_many([(todo[k], recipient_of(todo[k]), e) for k, e in fresh.items()])
        for entry in fresh.values():
            DELIVERIES.labels(channel, entry.status).inc()
    entries = {**known, **fresh}
    now = datetime.now(UTC)
    done = [c for c in cmds if c.delivery_key in entries]
    await asyncio.gather(*(
        bus.publish(topics.DELIVERY_OUTCOMES, DeliveryOutcome(
            event_id=cmd.event_id, program=cmd.program, channel=channel, audience_id=cmd.audience_id,
            recipient_id=recipient_of(cmd), status=entries[cmd.delivery_key].status,
            reason=entries[cmd.delivery_key].reason, attempts=entries[cmd.delivery_key].attempts, at=now),
            key=recipient_of(cmd) or cmd.audience_id)
        for cmd in done))
    if unavailable:
        # What was sent is recorded and announced; the rest goes back to the bus (the ledger keeps the
        # redelivered batch from sending anything twice).
        log.warning("channel unavailable; batch handed back for redelivery",
                    extra={"channel": channel, "pending": len(unavailable), "reason": str(unavailable[0])[:300]})
        raise unavailable[0]
    return [entries[c.delivery_key] for c in cmds]


async def deliver_once(
    cmd: D,
    channel: Channel,
    recipient_id: str | None,
    send: Callable[[], Awaitable[int]],
    ledger: Ledger,
    bus: Bus,
) -> LedgerEntry:
    """`deliver_many` for one command."""
    [entry] = await deliver_many([cmd], channel, lambda _c: recipient_id, lambda _c: send(), ledger, bus)
    return entry
