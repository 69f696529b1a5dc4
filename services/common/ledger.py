"""The delivery ledger every channel keeps: one row per delivery (event, recipient or group, channel), and
the commands parked for deliveries that are deferred.

A row is written as the channel's answer comes in, before the offset is committed: a redelivered command
finds its rows and sends nothing twice. A deferred row carries its next attempt and a reference to its
parked command, so that the channel's retrier can send it again after any restart, from the table alone.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.deliveries import DeliveryCommand
from services.common.db import as_utc, upsert_many

Status = Literal["sent", "failed", "deferred"]


@dataclass(frozen=True)
class LedgerEntry:
    status: Status
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None = None  # deferred only
    first_attempt_at: datetime | None = None  # when the first attempt was refused for now (the horizon's start)


@dataclass(frozen=True)
class DueDelivery:
    """A deferred delivery whose time has come: its parked command, and whom it is for."""

    command_body: str
    recipient_id: str | None
    entry: LedgerEntry


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
        Column("next_attempt_at", DateTime(timezone=True), nullable=True, index=True),
        Column("first_attempt_at", DateTime(timezone=True), nullable=True),
        Column("command_ref", String(80), nullable=True),
    )


def parked_table(metadata: MetaData, name: str) -> Table:
    """Commands kept for their deferred deliveries (a group's email once, not once per person)."""
    return Table(
        name, metadata,
        Column("ref", String(80), primary_key=True),
        Column("body", Text, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
    )


def command_ref(command: DeliveryCommand) -> str:
    return hashlib.sha256(command.model_dump_json().encode()).hexdigest()


class Ledger:
    def __init__(self, engine: AsyncEngine, table: Table, parked: Table | None = None) -> None:
        self.engine = engine
        self.table = table
        self.parked = parked

    def _entry(self, row: Any) -> LedgerEntry:
        return LedgerEntry(row.status, row.reason, row.attempts, as_utc(row.next_attempt_at),
                           as_utc(row.first_attempt_at))

    async def lookup(self, key: str) -> LedgerEntry | None:
        return (await self.lookup_many([key])).get(key)

    async def lookup_many(self, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                rows = (await conn.execute(select(self.table).where(
                    self.table.c.delivery_key.in_(list(keys[start:start + 500]))))).all()
                found.update({r.delivery_key: self._entry(r) for r in rows})
        return found

    async def record_many(self, results: Sequence[tuple[Any, LedgerEntry]]) -> None:
        """Record each (delivery, entry) in one transaction; a deferred delivery's command is parked first."""
        async with self.engine.begin() as conn:
            await self.record_on(conn, results)

    async def record_on(self, conn: AsyncConnection, results: Sequence[tuple[Any, LedgerEntry]]) -> None:
        """`record_many` on a connection the caller holds and commits (a writer that writes many batches)."""
        now = datetime.now(UTC)
        parked: dict[str, str] = {}
        rows = []
        for delivery, entry in results:
            cmd: DeliveryCommand = delivery.command
            ref = None
            if entry.status == "deferred":
                ref = command_ref(cmd)
                parked.setdefault(ref, cmd.model_dump_json())
            rows.append({"delivery_key": delivery.key, "event_id": str(cmd.event_id), "audience_id": cmd.audience_id,
                         "recipient_id": delivery.recipient_id, "status": entry.status, "reason": entry.reason,
                         "attempts": entry.attempts, "at": now, "next_attempt_at": entry.next_attempt_at,
                         "first_attempt_at": entry.first_attempt_at, "command_ref": ref})
        if parked:
            if self.parked is None:
                raise RuntimeError(f"{self.table.name}: a deferral needs a table to park its command in")
            await upsert_many(conn, self.parked, [{"ref": r, "body": b, "at": now} for r, b in parked.items()],
                              ("ref",))
        await upsert_many(conn, self.table, rows, ("delivery_key",))

    async def due(self, now: datetime, limit: int = 500) -> list[DueDelivery]:
        """Deferred deliveries whose next attempt has come, earliest first."""
        if self.parked is None:
            return []
        t, p = self.table, self.parked
        query = (select(t, p.c.body).join(p, p.c.ref == t.c.command_ref)
                 .where(t.c.status == "deferred", t.c.next_attempt_at <= now).order_by(t.c.next_attempt_at).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [DueDelivery(r.body, r.recipient_id, self._entry(r)) for r in rows]

    async def purge(self, before: datetime) -> int:
        """Forget the deliveries that ended before `before` (the retention; a command redelivered that late
        is not a thing the bus does), and the parked commands no deferred delivery still needs."""
        t = self.table
        async with self.engine.begin() as conn:
            removed = (await conn.execute(delete(t).where(t.c.status != "deferred", t.c.at < before))).rowcount or 0
            if self.parked is not None:
                p = self.parked
                still = select(t.c.command_ref).where(t.c.status == "deferred", t.c.command_ref.is_not(None))
                removed += (await conn.execute(delete(p).where(p.c.at < before, p.c.ref.not_in(still)))).rowcount or 0
        return removed

    async def next_due(self) -> datetime | None:
        async with self.engine.connect() as conn:
            value: datetime | None = (await conn.execute(select(func.min(self.table.c.next_attempt_at))
                                                         .where(self.table.c.status == "deferred"))).scalar()
        return as_utc(value)
