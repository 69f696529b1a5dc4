"""The retention's timing: first a few minutes after start (off the busy start), then again and again."""

import asyncio
from datetime import UTC, datetime, timedelta

from services.common.retention import retention_loop

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def test_the_retention_purges_what_is_older_than_its_days_after_a_delay_and_then_repeatedly() -> None:
    cutoffs: list[datetime] = []
    third = asyncio.Event()

    async def purge(before: datetime) -> int:
        cutoffs.append(before)
        if len(cutoffs) == 3:
            third.set()
        return 0

    loop = retention_loop("test", purge, 30, clock=lambda: NOW, every=timedelta(0), first_after=timedelta(0))
    task = asyncio.create_task(loop())
    try:
        await asyncio.wait_for(third.wait(), 5)
    finally:
        task.cancel()
    assert cutoffs[:3] == [NOW - timedelta(days=30)] * 3
