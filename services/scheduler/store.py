"""The scheduler's own tables: the last digest period said for each target group and cadence, and the held
events it must release, kept until the tailor confirms each release. Together they are the whole schedule: what
is due next follows from them and the clock, so a replica that takes over, or a platform back after days,
knows exactly what it missed."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Column, DateTime, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.schedule import Period
from services.common.db import as_utc, insert_for, upsert
from services.common.migrations import Migrations
from services.scheduler.periods import Cadence, parse_period

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "scheduler", metadata)

#: The newest period whose digest was said, per target group and cadence.
digests = Table(
    "scheduler_digests", metadata,
    Column("program", String(32), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    Column("cadence", String(8), primary_key=True),
    Column("period", String(16), nullable=False),  # its label: 2026-W48, 2026-11
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

releases = Table(
    "scheduler_releases", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("release_at", DateTime(timezone=True), nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),  # waiting | emitted | released | cancelled
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: An event's deliveries that wait for quiet hours to end (rule 10), one row per instant: said as a release of
#: the event when it comes, and kept until the tailor confirms (a plan announced at or after it).
waits = Table(
    "scheduler_waits", metadata,
    Column("event_id", String(36), primary_key=True),
    Column("until", DateTime(timezone=True), primary_key=True),
    Column("program", String(32), nullable=False),
    Column("state", String(16), nullable=False, index=True),  # waiting | emitted | released
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Release:
    event_id: UUID
    program: str
    release_at: datetime
    state: str = "waiting"  # or "emitted": said, not yet confirmed by the tailor
    said_at: datetime | None = None  # when it was last said

    def due_at(self) -> datetime:
        """When to say it: at its instant, and again if the tailor has not confirmed it within a while."""
        if self.state == "emitted" and self.said_at is not None:
            return max(self.release_at, self.said_at) + CONFIRM_WITHIN
        return self.release_at


#: A release the tailor has not confirmed is said again after this long (the bus may have lost it).
CONFIRM_WITHIN = timedelta(minutes=2)

CADENCES: tuple[Cadence, ...] = ("weekly", "monthly")
DigestKey = tuple[str, str, Cadence]  # programme, target group, cadence


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

    async def mark(self, event_id: UUID, state: str, at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(releases).where(releases.c.event_id == str(event_id),
                                                      releases.c.state.not_in(ENDED))
                               .values(state=state, updated_at=at))

    async def wait(self, event_id: UUID, program: str, until: datetime) -> None:
        """Remember that some of an event's deliveries wait until `until` (again: nothing changes)."""
        async with self.engine.begin() as conn:
            await conn.execute(insert_for(conn)(waits).values(
                event_id=str(event_id), until=until.astimezone(UTC), program=program, state="waiting",
                updated_at=datetime.now(UTC)).on_conflict_do_nothing())

    async def mark_waits(self, event_id: UUID, state: str, at: datetime, until_by: datetime | None = None) -> None:
        """Mark the event's waits (those until `until_by` at the latest, when given) as `state`."""
        condition = [waits.c.event_id == str(event_id), waits.c.state != "released"]
        if until_by is not None:
            condition.append(waits.c.until <= until_by.astimezone(UTC))
        async with self.engine.begin() as conn:
            await conn.execute(update(waits).where(*condition).values(state=state, updated_at=at))

    async def unreleased_waits(self) -> list[Release]:
        """Waiting deliveries the tailor has not confirmed sent, earliest first (as releases of their event)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(waits).where(waits.c.state != "released")
                                       .order_by(waits.c.until))).all()
        return [Release(UUID(r.event_id), r.program, as_utc(r.until), r.state, as_utc(r.updated_at)) for r in rows]

    async def digest_marks(self) -> dict[DigestKey, Period]:
        """The newest period said for each target group and cadence."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(digests))).all()
        return {(r.program, r.audience_id, r.cadence): parse_period(r.period) for r in rows if r.cadence in CADENCES}

    async def mark_digest(self, key: DigestKey, period: Period, at: datetime) -> None:
        """Remember `period` as said (only forward: an older period never replaces a newer one)."""
        program, audience_id, cadence = key
        async with self.engine.begin() as conn:
            moved = await conn.execute(update(digests).where(
                digests.c.program == program, digests.c.audience_id == audience_id, digests.c.cadence == cadence,
                digests.c.period_start < period.start).values(period=period.label, period_start=period.start,
                                                              updated_at=at))
            if moved.rowcount == 0:
                await conn.execute(insert_for(conn)(digests).values(
                    program=program, audience_id=audience_id, cadence=cadence, period=period.label,
                    period_start=period.start, updated_at=at).on_conflict_do_nothing())

    async def unreleased(self) -> list[Release]:
        """Held events the tailor has not confirmed released, earliest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(releases).where(releases.c.state.not_in(ENDED))
                                       .order_by(releases.c.release_at))).all()
        return [Release(UUID(r.event_id), r.program, as_utc(r.release_at), r.state, as_utc(r.updated_at))
                for r in rows]
