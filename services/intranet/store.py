"""The intranet's own table of published items."""

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Column, Date, DateTime, MetaData, String, Table, Text, desc, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import PublishIntranetItem
from services.common.db import as_utc, upsert
from services.common.delivery import Delivery
from services.common.ended_sessions import ended_sessions_table
from services.common.ledger import ledger_table, parked_table
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "intranet", metadata)
LEDGER = ledger_table(metadata, "intranet_ledger")
#: Sessions ended by sign-out, as announced: see services/common/ended_sessions.
ENDED_SESSIONS = ended_sessions_table(metadata, "intranet_ended_sessions")
PARKED = parked_table(metadata, "intranet_parked_commands")

items = Table(
    "intranet_items", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False, index=True),
    Column("event_type", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("summary", Text, nullable=False),
    Column("html_body", Text, nullable=False),
    Column("importance", String(16), nullable=False),
    Column("sensitivity", String(16), nullable=False),
    Column("facts", Text, nullable=False),
    Column("timeline_date", Date, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(frozen=True)
class Item:
    event_id: str
    program: str
    event_type: str
    title: str
    summary: str
    html_body: str
    importance: str
    sensitivity: str
    facts: dict[str, str]
    timeline_date: date | None
    occurred_at: datetime
    published_at: datetime


class IntranetStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def send(self, delivery: Delivery[PublishIntranetItem], /) -> int:
        """The intranet channel's sender: publishing an item is storing it (the pages serve it)."""
        return await self.save(delivery.command)

    async def save(self, cmd: PublishIntranetItem) -> int:
        async with self.engine.begin() as conn:
            await upsert(conn, items, {
                "event_id": str(cmd.event_id), "program": cmd.program, "event_type": cmd.event_type,
                "title": cmd.title, "summary": cmd.summary, "html_body": cmd.html_body,
                "importance": cmd.importance, "sensitivity": cmd.sensitivity, "facts": json.dumps(cmd.facts),
                "timeline_date": cmd.timeline_date, "occurred_at": cmd.occurred_at.astimezone(UTC),
                "published_at": cmd.published_at.astimezone(UTC)}, ("event_id",))
        return 1

    async def latest(self, program: str | None = None, event_type: str | None = None, limit: int = 50,
                     internal_of: Collection[str] | None = None) -> list[Item]:
        """The newest items; with `internal_of`, public items and the internal items of those programmes only."""
        query = select(items).order_by(desc(items.c.published_at)).limit(limit)
        if internal_of is not None:
            query = query.where(or_(items.c.sensitivity == "public", items.c.program.in_(sorted(internal_of))))
        if program:
            query = query.where(items.c.program == program)
        if event_type:
            query = query.where(items.c.event_type == event_type)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [self._item(r) for r in rows]

    async def get(self, event_id: str) -> Item | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(items).where(items.c.event_id == event_id))).first()
        return self._item(row) if row else None

    @staticmethod
    def _item(r: object) -> Item:
        return Item(
            event_id=r.event_id, program=r.program, event_type=r.event_type, title=r.title,  # type: ignore[attr-defined]
            summary=r.summary, html_body=r.html_body, importance=r.importance,  # type: ignore[attr-defined]
            sensitivity=r.sensitivity, facts=json.loads(r.facts), timeline_date=r.timeline_date,  # type: ignore[attr-defined]
            occurred_at=as_utc(r.occurred_at), published_at=as_utc(r.published_at),  # type: ignore[attr-defined]
        )
