"""The intranet's own table of published items."""

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Date, DateTime, MetaData, String, Table, Text, desc, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import Amendment, GoLiveFacts, PublishIntranetItem
from services.common.db import as_utc, upsert
from services.common.delivery import Delivery, TransientDeliveryError
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
    Column("facts", Text, nullable=False),  # labelled in Swedish, for people
    Column("timeline_date", Date, nullable=True),  # a go-live item's planned date
    Column("area", String(64), nullable=True),  # a go-live item's area, wave and state
    Column("wave", String(100), nullable=True),
    Column("golive_state", String(16), nullable=True),
    Column("phase", String(200), nullable=True),  # a status update's phase
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False, index=True),
    # The last correction or retraction: what it said and when (the Atom entry's `updated` moves with it).
    Column("amendment", Text, nullable=True),  # JSON: kind, what_changed, reason, at
    Column("updated_at", DateTime(timezone=True), nullable=True),
)

#: An item's earlier texts, kept when a correction replaced them (oldest first by `replaced_at`).
versions = Table(
    "intranet_item_versions", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("replaced_at", DateTime(timezone=True), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("summary", Text, nullable=False),
    Column("html_body", Text, nullable=False),
    Column("facts", Text, nullable=False),
    Column("replaced_by", String(36), nullable=False),  # the correction's event id
)


def _golive_columns(golive: GoLiveFacts | None) -> dict[str, Any]:
    if golive is None:
        return {"timeline_date": None, "area": None, "wave": None, "golive_state": None}
    return {"timeline_date": golive.planned_date, "area": golive.area, "wave": golive.wave,
            "golive_state": golive.state}


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
    golive: GoLiveFacts | None
    phase: str | None
    occurred_at: datetime
    published_at: datetime
    amendment: Amendment | None = None
    updated_at: datetime | None = None

    @property
    def updated(self) -> datetime:
        """When the item last changed: published, or corrected or withdrawn since."""
        return self.updated_at or self.published_at


@dataclass(frozen=True)
class Version:
    """An item's text before a correction replaced it."""

    title: str
    html_body: str
    facts: dict[str, str]
    replaced_at: datetime


class NotYetPublished(TransientDeliveryError):
    """A correction or retraction of an item the intranet has not published yet: it waits for it."""


class IntranetStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def send(self, delivery: Delivery[PublishIntranetItem], /) -> int:
        """The intranet channel's sender: publishing an item is storing it (the pages serve it)."""
        return await self.save(delivery.command)

    async def save(self, cmd: PublishIntranetItem) -> int:
        if cmd.amendment is not None and cmd.follows is not None:
            return await self.amend(cmd, cmd.follows, cmd.amendment)
        async with self.engine.begin() as conn:
            await upsert(conn, items, {
                "event_id": str(cmd.event_id), "program": cmd.program, "event_type": cmd.event_type,
                "title": cmd.title, "summary": cmd.summary, "html_body": cmd.html_body,
                "importance": cmd.importance, "sensitivity": cmd.sensitivity, "facts": json.dumps(cmd.facts),
                **_golive_columns(cmd.golive), "phase": cmd.phase, "occurred_at": cmd.occurred_at.astimezone(UTC),
                "published_at": cmd.published_at.astimezone(UTC)}, ("event_id",))
        return 1

    async def amend(self, cmd: PublishIntranetItem, original: UUID, amendment: Amendment) -> int:
        """A correction replaces the original item's text (the earlier one is kept as a version); a retraction
        keeps the text and marks the item withdrawn. Either moves the item's `updated`."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(items).where(items.c.event_id == str(original)))).first()
            if row is None:
                raise NotYetPublished(f"the item of {original} is not published yet")
            changes: dict[str, Any] = {"amendment": amendment.model_dump_json(), "updated_at": now}
            if amendment.kind == "correction":
                await conn.execute(insert(versions).values(
                    event_id=str(original), replaced_at=now, title=row.title, summary=row.summary,
                    html_body=row.html_body, facts=row.facts, replaced_by=str(cmd.event_id)))
                changes.update(title=cmd.title, summary=cmd.summary, html_body=cmd.html_body,
                               facts=json.dumps(cmd.facts), **_golive_columns(cmd.golive), phase=cmd.phase)
            await conn.execute(update(items).where(items.c.event_id == str(original)).values(**changes))
        return 1

    async def versions(self, event_id: str) -> list[Version]:
        """The item's earlier texts, newest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(versions).where(versions.c.event_id == event_id)
                                       .order_by(desc(versions.c.replaced_at)))).all()
        return [Version(r.title, r.html_body, json.loads(r.facts), as_utc(r.replaced_at)) for r in rows]

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
    def _item(r: Any) -> Item:
        golive = (GoLiveFacts(area=r.area, wave=r.wave, planned_date=r.timeline_date, state=r.golive_state)
                  if r.area and r.timeline_date and r.golive_state else None)
        return Item(
            event_id=r.event_id, program=r.program, event_type=r.event_type, title=r.title, summary=r.summary,
            html_body=r.html_body, importance=r.importance, sensitivity=r.sensitivity, facts=json.loads(r.facts),
            golive=golive, phase=r.phase, occurred_at=as_utc(r.occurred_at), published_at=as_utc(r.published_at),
            amendment=Amendment.model_validate_json(r.amendment) if r.amendment else None,
            updated_at=as_utc(r.updated_at))
