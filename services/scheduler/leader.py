"""One active scheduler at a time. On PostgreSQL a replica holds a session-level advisory lock on a
connection of its own; the others wait, and the first to get the lock takes over when the holder dies
(its connection closes and the lock with it). SQLite is one process's database: no lock is needed."""

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class LeaderLock:
    def __init__(self, engine: AsyncEngine, name: str = "budkavle-scheduler", poll_seconds: float = 2.0) -> None:
        self.engine = engine
        self.key = zlib.crc32(name.encode())
        self.poll_seconds = poll_seconds
        self.attempts = 0  # tries to take the lock so far (a standby's count keeps growing)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[asyncio.Event]:
        """Wait until this replica leads; yields an event that is set if the lead is lost (the lock's
        connection broke), so that the caller stops acting as the leader."""
        if self.engine.dialect.name != "postgresql":
            yield asyncio.Event()
            return
        conn = await self._acquire()
        lost = asyncio.Event()
        watch = asyncio.create_task(self._watch(conn, lost))
        try:
            yield lost
        finally:
            # The watch may be in the middle of its query on this connection: let it end before the unlock, or
            # the two would use the connection at once.
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
            with contextlib.suppress(Exception):
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            # The lock is the session's: the connection is closed for good, not handed back to the pool, where a
            # connection whose unlock failed would keep the lock from every standby for as long as it lived.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _acquire(self) -> AsyncConnection:
        waiting_logged = False
        while True:
            conn = await self.engine.connect()
            try:
                got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar()
                await conn.commit()
                self.attempts += 1
            except Exception:
                await conn.close()
                raise
            if got:
                log.info("scheduler lock taken: this replica schedules")
                return conn
            await conn.close()
            if not waiting_logged:
                log.info("another replica schedules; waiting to take over")
                waiting_logged = True
            await asyncio.sleep(self.poll_seconds)

    async def _watch(self, conn: AsyncConnection, lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await conn.execute(text("SELECT 1"))
                await conn.commit()
            except Exception as exc:
                log.warning("scheduler lock lost with its connection", extra={"reason": str(exc)[:200]})
                lost.set()
                return
