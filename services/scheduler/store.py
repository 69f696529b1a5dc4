"""The scheduler's own tables: APScheduler's job store (`scheduler_jobs`, the jobs and their next run),
and the held events it must release, kept until the tailor confirms each release."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, Float, LargeBinary, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import as_utc, upsert
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "scheduler", metadata)

#: The table APScheduler's SQLAlchemyJobStore reads and writes (its own shape, made here so that the
#: service's Alembic history owns it).
JOBS = Table(
    "scheduler_jobs", metadata,
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

releases = Table(
    "scheduler_releases", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("release_at", DateTime(timezone=True), nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),  # waiting | emitted | released | cancelled
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Release:
    event_id: UUID
    program: str
    release_at: datetime


#: A release in these states is never said (again).
ENDED = ("released", "cancelled")


class SchedulerStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def hold(self, event_id: UUID, program: str, release_at: datetime) -> bool:
        """Remember an event held until `release_at` (again: a newer instant replaces the older one). False when
        it needs no release: released already, or cancelled."""
        async with self.engine.begin() as conn:
            current = (await conn.execute(select(releases.c.state).where(
                releases.c.event_id == str(event_id)))).scalar()
            if current in ENDED:
                return False
            await upsert(conn, releases, {"event_id": str(event_id), "program": program, "state": "waiting",
                                          "release_at": release_at.astimezone(UTC), "updated_at": datetime.now(UTC)},
                         ("event_id",))
        return True

    async def cancel(self, event_id: UUID, program: str, at: datetime) -> None:
        """A held event withdrawn: never released, even if its hold is heard only after this."""
        async with self.engine.begin() as conn:
            await upsert(conn, releases, {"event_id": str(event_id), "program": program, "state": "cancelled",
                                          "release_at": at.astimezone(UTC), "updated_at": datetime.now(UTC)},
                         ("event_id",))

    async def mark(self, event_id: UUID, state: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(releases).where(releases.c.event_id == str(event_id),
                                                      releases.c.state.not_in(ENDED))
                               .values(state=state, updated_at=datetime.now(UTC)))

    async def unreleased(self) -> list[Release]:
        """Held events the tailor has not confirmed released, earliest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(releases).where(releases.c.state.not_in(ENDED))
                                       .order_by(releases.c.release_at))).all()
        return [Release(UUID(r.event_id), r.program, as_utc(r.release_at)) for r in rows]
