"""Sessions ended before their time (signed out), in a table of each service that reads sessions: a cookie
that outlived its sign-out opens nothing, on any replica, after any restart. The service that signs people out
writes its own row and announces it (`people.session_ended.v1`); the others write theirs when they hear it.
A row is forgotten once its session would have expired anyway."""

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.people import SessionEnded
from services.common.db import as_utc, upsert

Clock = Callable[[], datetime]


def ended_sessions_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name, metadata,
        Column("sid", String(64), primary_key=True),
        Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    )


class EndedSessions:
    def __init__(self, engine: AsyncEngine, table: Table, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.engine, self.table, self.clock = engine, table, clock

    async def ended(self, sid: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(self.table.c.sid).where(self.table.c.sid == sid))).first() is not None

    async def end(self, ended: SessionEnded) -> None:
        """Keep the session as ended (the same one again changes nothing), and forget those past their expiry."""
        async with self.engine.begin() as conn:
            await upsert(conn, self.table, {"sid": ended.sid, "expires_at": as_utc(ended.expires_at)}, ("sid",))
            await conn.execute(delete(self.table).where(self.table.c.expires_at < self.clock()))
