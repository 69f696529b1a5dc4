"""The tailor's own tables: the recipient directory and what it has done with each event."""

from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import Event, parse_event
from services.common.db import upsert
from services.common.migrations import Migrations
from services.tailor.directory import Recipient

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "tailor", metadata)

recipients = Table(
    "tailor_recipients", metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("organisation", String(200), nullable=False, default=""),
    Column("role", String(100), nullable=False, default=""),
    Column("profession", String(100), nullable=False, default=""),
    Column("area", String(64), nullable=False, default=""),
    Column("municipality", String(100), nullable=False, default=""),
    Column("options", String(20), nullable=False, default=""),
)

#: One row: bumped by every directory import, so that a tailor can keep the directory in memory and
#: reload it only when another process (e.g. `budkavle recipients import`) replaced it.
directory_version = Table(
    "tailor_directory_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

events = Table(
    "tailor_events", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # held | planned
    Column("release_at", DateTime(timezone=True), nullable=True, index=True),
    Column("body", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _row(r: Recipient) -> dict[str, str]:
    return {"id": r.id, "name": r.name, "email": r.email, "organisation": r.organisation, "role": r.role,
            "profession": r.profession, "area": r.area, "municipality": r.municipality,
            "options": ";".join(str(o) for o in sorted(r.options))}


class TailorStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._cache: tuple[int, list[Recipient]] | None = None

    async def replace_directory(self, people: Iterable[Recipient]) -> int:
        """Replace the whole directory in one transaction: an import lands whole or not at all."""
        rows = [_row(r) for r in people]
        async with self.engine.begin() as conn:
            await conn.execute(delete(recipients))
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(recipients), rows[start:start + 5000])
            bumped = await conn.execute(update(directory_version).where(directory_version.c.id == 1)
                                        .values(version=directory_version.c.version + 1))
            if bumped.rowcount == 0:
                await conn.execute(insert(directory_version).values(id=1, version=1))
        return len(rows)

    async def directory_size(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(recipients))).scalar_one())

    async def load_directory(self) -> list[Recipient]:
        """The whole directory, from memory unless an import has replaced it since it was read."""
        async with self.engine.connect() as conn:
            version = int((await conn.execute(select(directory_version.c.version))).scalar() or 0)
            if self._cache is not None and self._cache[0] == version:
                return self._cache[1]
            rows = (await conn.execute(select(recipients))).all()
        people = [
            Recipient(id=r.id, name=r.name, email=r.email, organisation=r.organisation, role=r.role,
                      profession=r.profession, area=r.area, municipality=r.municipality,
                      options=frozenset(int(o) for o in r.options.split(";") if o))
            for r in rows
        ]
        self._cache = (version, people)
        return people

    async def status(self, event_id: UUID) -> str | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(events.c.status).where(events.c.event_id == str(event_id)))).scalar()
        return str(value) if value is not None else None

    async def record(self, event: Event, status: str) -> None:
        release_at = event.embargo_until.astimezone(UTC) if status == "held" and event.embargo_until else None
        async with self.engine.begin() as conn:
            await upsert(conn, events, {"event_id": str(event.event_id), "program": event.program,
                                        "body": event.model_dump_json(), "status": status, "release_at": release_at,
                                        "updated_at": datetime.now(UTC)}, ("event_id",))

    async def due(self, now: datetime) -> list[Event]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(events.c.body).where(events.c.status == "held", events.c.release_at <= now.astimezone(UTC))
                .order_by(events.c.release_at)
            )).all()
        return [parse_event(r.body) for r in rows]

    async def next_release(self) -> datetime | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.min(events.c.release_at)).where(events.c.status == "held"))).scalar()
        if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
            value = value.replace(tzinfo=UTC)
        return value  # type: ignore[no-any-return]
