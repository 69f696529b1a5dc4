"""Personal data kept only as long as needed (`BUDKAVLE_RETENTION_DAYS`, default 365).

Every service that keeps rows about a person (a delivery ledger's row per recipient, the gateway's
outcome per recipient, the tailor's record of whom it planned, a click) hands its purge here. The purge
removes what is older than the retention, keeping what the figures need as per-group counts, and runs a
few minutes after start (off the busy start, where it would only compete for SQLite's one writer) and then
every few hours: a service that was down simply catches up.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

#: Removes what was recorded before the instant; returns how many rows went.
Purge = Callable[[datetime], Awaitable[int]]

EVERY = timedelta(hours=6)
FIRST_AFTER = timedelta(minutes=5)


def retention_loop(service: str, purge: Purge, days: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                   every: timedelta = EVERY, first_after: timedelta = FIRST_AFTER) -> Callable[[], Awaitable[None]]:
    """A background task: `purge` everything older than `days`, `first_after` the start and every `every`."""
    async def loop() -> None:
        await asyncio.sleep(first_after.total_seconds())
        while True:
            removed = await purge(clock() - timedelta(days=days))
            log.info("retention applied", extra={"service": service, "days": days, "removed": removed})
            await asyncio.sleep(every.total_seconds())
    return loop
